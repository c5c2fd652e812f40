"""One frame, many sockets: a broadcast room's tick is framed once, not once per viewer.

ASGI's `send` takes a frame's text, and the server frames it (and, here,
encodes it) for each socket anew. autobahn, under daphne, has a way made for
broadcast: a message prepared once (`prepareMessage`, its WebSocket frame
built a single time) is sent as it is on any number of connections
(`sendPreparedMessage`). Under daphne, a socket's `send` is its server's
`handle_reply` bound to the connection's protocol; `Wire` finds that protocol
and sends a `SharedText` prepared, with the checks `handle_reply` and
`sendMessage` make. Under any other server (the tests' communicator), or
whenever a check fails, the frame goes through `send` as any other.
"""

from __future__ import annotations

import functools
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket


class SharedText(str):
    """A frame's text that many sockets are sent; its prepared message, per factory."""

    prepared: dict[int, Any]

    def __new__(cls, text: str) -> SharedText:
        self = super().__new__(cls, text)
        self.prepared = {}
        return self


class Wire:
    """A daphne connection, for frames that are sent prepared."""

    __slots__ = ("connections", "protocol")

    def __init__(self, protocol: DaphneWebSocket, server: Server) -> None:
        self.protocol: Any = protocol
        self.connections = server.connections

    @classmethod
    def of(cls, send: Any) -> Wire | None:
        """The wire under `send` when it is daphne's; None otherwise."""
        if not isinstance(send, functools.partial) or len(send.args) != 1:
            return None
        server = getattr(send.func, "__self__", None)
        protocol = send.args[0]
        if (
            isinstance(server, Server)
            and send.func.__name__ == "handle_reply"
            and isinstance(protocol, DaphneWebSocket)
        ):
            return cls(protocol, server)
        return None

    def send_shared(self, text: SharedText) -> bool:
        """Send `text` prepared; False when it must go through `send` after all
        (the connection is not open, or is gone: `send` knows what to do then)."""
        protocol = self.protocol
        connection = self.connections.get(protocol)
        if (
            connection is None
            or "disconnected" in connection
            or protocol.state != WebSocketProtocol.STATE_OPEN
        ):
            return False
        factory = protocol.factory
        prepared = text.prepared.get(id(factory))
        if prepared is None:
            prepared = text.prepared[id(factory)] = factory.prepareMessage(
                text.encode(), isBinary=False, doNotCompress=True
            )
        protocol.sendPreparedMessage(prepared)
        return True
