"""The site's server: daphne, with an access log that never writes a token.

daphne logs the full URI of every HTTP request; `?token=` grants a socket, so
it is blanked before the line is written. Run it as daphne is run:

    python -m chat.platform.server $(cat deploy/daphne.args) -p 8000 chatsite.asgi:application
"""

from __future__ import annotations

import errno
import logging
import re
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import tcp

logger = logging.getLogger(__name__)

_SECRETS = re.compile(r"(?i)([?&;](?:token|access_token)=)[^&;#\s\"]*")


def scrub(path: str) -> str:
    """`path` with the values of its token parameters replaced by `[removed]`."""
    return _SECRETS.sub(r"\1[removed]", path)


class ScrubbingServer(Server):
    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": scrub(details["path"])}
        super().log_action(protocol, action, details)


_buffered_write = tcp.Connection.write
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR)


def write_through(self: tcp.Connection, data: bytes) -> None:
    """Send at once what the kernel takes; buffer only the rest, as Twisted does.

    Twisted buffers every write and sends it when the reactor next finds the
    socket writable: registering for that and unregistering again costs two
    epoll changes and a callback for each frame. A broadcast writes one frame
    to each of a room's sockets, nearly always into an empty kernel buffer.
    Nothing buffered means nothing for the flow control of Twisted's producer
    (the HTTP channel, which pauses reading while the buffer is full) to do.
    """
    if (
        data
        and not self.dataBuffer
        and not self._tempDataBuffer
        and self.connected
        and not self.disconnecting
        and not self._writeDisconnected
        and not self.TLS
    ):
        try:
            sent = self.socket.send(data)
        except OSError as error:
            # A reset or closed peer: the buffered write meets the error again
            # and loses the connection the usual way.
            sent = 0
            if error.errno not in _WOULD_BLOCK:
                logger.debug("write-through send failed: %r", error)
        if sent == len(data):
            return
        data = data[sent:]
    _buffered_write(self, data)


class ScrubbingCommandLine(CommandLineInterface):
    server_class = ScrubbingServer


def main() -> None:
    tcp.Connection.write = write_through  # type: ignore[method-assign,assignment]
    ScrubbingCommandLine.entrypoint()


if __name__ == "__main__":
    main()
