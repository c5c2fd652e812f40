"""The internals of Twisted, daphne and autobahn the site relies on, pinned, and the
installed version of every library the uses were read against.

Each test fails, naming the version the site was checked against, when a private
name it uses is gone or has changed shape; why the site reaches there, and how the
fingerprints work, is told in tests/upstream_shapes_helpers.py.
"""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import version
from typing import Any

import pytest
from autobahn.websocket import protocol as autobahn_protocol
from autobahn.websocket.protocol import WebSocketProtocol
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket
from twisted.internet import abstract, tcp

from chat.platform import wire
from tests.upstream_shapes_helpers import (
    check_attribute,
    check_fingerprint,
    check_signature,
    pinned,
    shape,
)

# --- Twisted --------------------------------------------------------------------------


def test_twisted_connection_write():
    """chat/platform/server.py `write_through` replaces `tcp.Connection.write` and repeats
    Twisted's buffering test (dataBuffer, _tempDataBuffer, _writeDisconnected, TLS)."""
    used = "chat/platform/server.py write_through"
    check_fingerprint("twisted", tcp.Connection.write, "ea311df0946d3f99", used)
    check_fingerprint("twisted", abstract.FileDescriptor.write, "3e46c97fc173bc7e", used)
    for name in ("dataBuffer", "connected", "disconnecting", "_writeDisconnected"):
        check_attribute("twisted", abstract.FileDescriptor, name, used)
    check_attribute("twisted", tcp.Connection, "TLS", used)
    assert "self._tempDataBuffer" in inspect.getsource(abstract.FileDescriptor), shape(
        "twisted", "FileDescriptor no longer has _tempDataBuffer", used
    )


# --- daphne and autobahn --------------------------------------------------------------


def daphne_send() -> tuple[Any, Server, DaphneWebSocket]:
    """A socket's `send` as daphne makes it, on a server that listens nowhere."""
    server = Server(application=None, endpoints=["tcp:port=0"], signal_handlers=False)
    assert "self.ws_factory = WebSocketFactory(self, " in inspect.getsource(Server.run), shape(
        "daphne",
        "Server.run no longer makes its ws_factory",
        "chat/platform/wire.py Wire.send_shared",
    )
    assert "self.connections = {}" in inspect.getsource(Server.run), shape(
        "daphne", "Server.run no longer makes its connections dict", "chat/platform/wire.py Wire"
    )
    server.connections = {}
    server.ws_factory = WebSocketFactory(server, server=server.server_name)
    protocol = server.ws_factory.buildProtocol(None)
    assert "partial(self.handle_reply, protocol)" in inspect.getsource(Server.create_application), (
        shape(
            "daphne",
            "Server.create_application no longer gives send=partial(self.handle_reply, protocol)",
            "chat/platform/wire.py Wire.of",
        )
    )
    return functools.partial(server.handle_reply, protocol), server, protocol


def test_daphne_handle_reply():
    """chat/platform/wire.py `Wire.of` finds a socket's connection under its `send`, daphne's
    `partial(Server.handle_reply, protocol)`; `send_shared` repeats handle_reply's checks."""
    used = "chat/platform/wire.py Wire.of/send_shared"
    check_signature("daphne", Server.handle_reply, "(self, protocol, message)", used)
    check_fingerprint("daphne", Server.handle_reply, "9d9dbaea6de0657a", used)
    check_fingerprint("daphne", Server.create_application, "f1e300b4ecf636c8", used)


def test_daphne_server_connections():
    """chat/platform/wire.py `send_shared` reads `server.connections[protocol]` and its
    "disconnected" mark, as daphne's own handle_reply does."""
    used = "chat/platform/wire.py Wire.send_shared"
    _, server, _ = daphne_send()
    assert isinstance(getattr(server, "connections", None), dict), shape(
        "daphne", "Server.connections is not a dict", used
    )
    assert '["disconnected"] = ' in inspect.getsource(Server.protocol_disconnected), shape(
        "daphne", 'Server.protocol_disconnected no longer marks "disconnected"', used
    )


def test_daphne_websocket_protocol(monkeypatch):
    """chat/platform/wire.py takes daphne's WebSocketProtocol as autobahn's: its `state`, `factory`
    and `sendPreparedMessage`; and Wire.of must find the wire under a real daphne send."""
    used = "chat/platform/wire.py Wire"
    monkeypatch.setattr(wire, "stats", wire.WireStats())  # this process's counts stay as they were
    send, server, protocol = daphne_send()
    assert issubclass(DaphneWebSocket, WebSocketProtocol), shape(
        "daphne", "daphne's WebSocketProtocol is no autobahn WebSocketProtocol", used
    )
    assert isinstance(protocol.factory, WebSocketFactory), shape(
        "daphne", "the protocol's factory is not daphne's WebSocketFactory", used
    )
    assert wire.missing(send) is None, shape("daphne", str(wire.missing(send)), used)
    found = wire.Wire.of(send)
    assert found is not None and found.protocol is protocol, shape(
        "daphne", "Wire.of finds no wire under daphne's send", used
    )
    assert found.connections is server.connections


def test_daphne_cli_server_class():
    """chat/platform/server.py runs daphne's command line with its own `server_class`
    (ScrubbingServer, overriding `log_action`)."""
    used = "chat/platform/server.py ScrubbingCommandLine/ScrubbingServer"
    check_attribute("daphne", CommandLineInterface, "server_class", used)
    check_attribute("daphne", CommandLineInterface, "entrypoint", used)
    check_signature("daphne", Server.log_action, "(self, protocol, action, details)", used)


def test_autobahn_send_prepared_message():
    """chat/platform/wire.py `send_shared` writes a frame framed once with `sendPreparedMessage`,
    once the protocol's `state` is `STATE_OPEN`."""
    used = "chat/platform/wire.py Wire.send_shared"
    check_signature(
        "autobahn",
        WebSocketProtocol.sendPreparedMessage,
        "(self, preparedMsg)",
        used,
    )
    check_fingerprint("autobahn", WebSocketProtocol.sendPreparedMessage, "207ccbb3f0d5085c", used)
    assert "self.state = WebSocketProtocol.STATE_OPEN" in inspect.getsource(autobahn_protocol), (
        shape("autobahn", "WebSocketProtocol no longer sets state to STATE_OPEN", used)
    )
    assert WebSocketProtocol.STATE_OPEN == 3, shape("autobahn", "STATE_OPEN is not 3", used)


def test_autobahn_prepare_message():
    """chat/platform/wire.py `send_shared` frames a broadcast tick once per factory with the
    factory's `prepareMessage(payload, isBinary=False, doNotCompress=True)`."""
    used = "chat/platform/wire.py Wire.send_shared"
    _, server, _ = daphne_send()
    check_signature(
        "autobahn",
        type(server.ws_factory).prepareMessage,
        "(self, payload, isBinary=False, doNotCompress=False)",
        used,
    )
    prepared = server.ws_factory.prepareMessage(b'{"type":"x"}', isBinary=False, doNotCompress=True)
    assert prepared.payloadHybi == b'\x81\x0c{"type":"x"}', shape(
        "autobahn", "a prepared message's payloadHybi is not its one unmasked text frame", used
    )


def test_wire_of_says_once_what_daphne_lacks(caplog, monkeypatch):
    """A daphne `send` of another shape turns the shared frames off loudly: one WARNING
    per process naming what was missing, and /healthz's `fallback` says it too."""
    monkeypatch.setattr(wire, "stats", wire.WireStats())
    send, server, _ = daphne_send()
    odd = functools.partial(server.handle_reply, object())  # not a daphne protocol
    with caplog.at_level("WARNING", logger="chat.platform.wire"):
        assert wire.Wire.of(odd) is None
        assert wire.Wire.of(odd) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "chat.platform.wire"]
    assert len(warnings) == 1, warnings
    assert "not daphne's WebSocketProtocol" in warnings[0]
    assert f"daphne {version('daphne')}" in warnings[0]
    assert wire.stats.fallback is not None and wire.stats.sockets == 0
    # Another server's send (the tests' communicator) is no fallback: nothing is said.
    caplog.clear()
    assert wire.Wire.of(lambda message: None) is None
    assert wire.Wire.of(send) is not None and wire.stats.sockets == 1
    assert not [r for r in caplog.records if r.name == "chat.platform.wire"]


# --- the versions the uses were read against --------------------------------------------

# Where each library's internals are used (chat/platform/README.md has the reasons).
USES = {
    "channels": "chat/platform/socket.py, chat/platform/db.py",
    "channels-redis": "chat/platform/layers.py, chat/platform/redis/",
    "daphne": "chat/platform/wire.py, chat/platform/server.py",
    "Django": "chat/platform/db.py",
    "twisted": "chat/platform/server.py",
    "autobahn": "chat/platform/wire.py",
}


@pytest.mark.parametrize("dist", sorted(USES))
def test_the_installed_version_is_the_one_the_uses_were_read_against(dist):
    """A shape can stay the same while what it does changes (daphne 4.1 and 4.2 share
    every shape checked above): any other version than the one checked fails here, so
    that the uses are read again before the pin moves."""
    checked = pinned(dist).split("==")[1].split()[0]
    assert version(dist) == checked, (
        f"{dist} {version(dist)} is installed; {USES[dist]} was read against "
        f"{pinned(dist)}. Read those uses again against {version(dist)} "
        "(chat/platform/README.md), then renew the pin."
    )
