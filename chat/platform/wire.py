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

That way rests on daphne's and autobahn's internals (tests/test_upstream_shapes_daphne.py
pins them). When daphne's `send` no longer has the shape looked for, every frame
still goes out through `send`, and the worker says so once, at WARNING, naming
what it missed. `stats` counts what went which way: /healthz shows it to staff
and to local probes (docs/protocol.md).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket

logger = logging.getLogger(__name__)


@dataclass
class WireStats:
    """This process's shared frames: how many went prepared, and whether they cannot."""

    sockets: int = 0  # daphne sockets whose wire was found
    prepared: int = 0  # messages framed once (one per tick and server factory)
    shared: int = 0  # frames written prepared, over every socket
    fallback: str | None = None  # what daphne's `send` lacked, the first time it did

    def report(self) -> dict[str, Any]:
        return {
            "sockets": self.sockets,
            "prepared": self.prepared,
            "shared": self.shared,
            "fallback": self.fallback,
        }


stats = WireStats()


def from_daphne(send: Any) -> bool:
    """Whether `send` is daphne's (whatever its shape): a wire was to be found under it."""
    func = send.func if isinstance(send, functools.partial) else send
    owner = getattr(func, "__self__", None)
    func = getattr(func, "__func__", func)
    modules = (getattr(func, "__module__", None) or "", type(owner).__module__)
    return isinstance(owner, Server) or any(name.split(".")[0] == "daphne" for name in modules)


def missing(send: Any) -> str | None:
    """What daphne's `send` lacks of the shape `Wire` needs; None when it has it all."""
    if not isinstance(send, functools.partial) or len(send.args) != 1:
        return f"send is {send!r}, not functools.partial(Server.handle_reply, protocol)"
    server = getattr(send.func, "__self__", None)
    if not isinstance(server, Server) or getattr(send.func, "__name__", "") != "handle_reply":
        return f"send is a partial of {send.func!r}, not of Server.handle_reply"
    protocol = send.args[0]
    if not isinstance(protocol, DaphneWebSocket):
        return f"send's protocol is a {type(protocol).__name__}, not daphne's WebSocketProtocol"
    if not isinstance(getattr(server, "connections", None), dict):
        return "Server.connections is not a dict"
    for owner, name in (
        (protocol, "sendPreparedMessage"),
        (protocol, "factory"),
        (getattr(protocol, "factory", None), "prepareMessage"),
        (WebSocketProtocol, "STATE_OPEN"),
    ):
        if not hasattr(owner, name):
            return f"{type(owner).__name__} has no {name}"
    return None


def fell_back(reason: str) -> None:
    """The shared-frame path is off: said once per process, at WARNING."""
    if stats.fallback is None:
        stats.fallback = reason
        logger.warning(
            "shared frames are off (daphne %s, autobahn %s): %s; every frame goes through send",
            version("daphne"),
            version("autobahn"),
            reason,
        )


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
        """The wire under `send` when it is daphne's; None otherwise (another server's,
        or daphne's in a shape not known: that is logged once, see `fell_back`)."""
        if not from_daphne(send):
            return None
        reason = missing(send)
        if reason is not None:
            fell_back(reason)
            return None
        stats.sockets += 1
        return cls(send.args[0], send.func.__self__)

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
            stats.prepared += 1
        protocol.sendPreparedMessage(prepared)
        stats.shared += 1
        return True
