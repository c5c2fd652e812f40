"""The framework internals the site relies on, pinned: each test fails, naming the version
the site was checked against, when a private name it uses is gone or has changed shape.

The site reaches below the public API of Channels, channels-redis, daphne, autobahn,
Twisted and Django where measurements said it pays (docs/architecture.md). Versions
are pinned in requirements.txt (Twisted and autobahn come with daphne, and are named
here as checked); an upgrade that changes one of these shapes fails here first,
instead of turning a fast path off, or worse, with every other test green.

Where the site keeps its own copy or rewrite of an upstream function or script, the
upstream text is fingerprinted (SHA-256 of its source): a change there means the
copy must be read again against it, and the fingerprint renewed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from autobahn.websocket import protocol as autobahn_protocol
from autobahn.websocket.protocol import WebSocketProtocol
from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import DatabaseSyncToAsync, aclose_old_connections
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import BaseChannelLayer
from channels_redis import utils as redis_utils
from channels_redis.core import RedisChannelLayer
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket
from django.db.backends.base.base import BaseDatabaseWrapper
from twisted.internet import abstract, tcp

from chat.platform import wire
from chat.platform.redis import routing

ROOT = Path(__file__).resolve().parents[1]
# Libraries that come with daphne rather than from requirements.txt: the versions checked.
CHECKED = {"twisted": "26.10.0", "autobahn": "26.11.1", "asgiref": "3.13.0"}


def pinned(dist: str) -> str:
    """`dist==version` as requirements.txt pins it (or as checked, for what daphne brings)."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, rest = line.partition("==")
        if name.split("[")[0].strip().lower() == dist.lower() and rest:
            return f"{dist}=={rest.split()[0]} (requirements.txt)"
    return f"{dist}=={CHECKED[dist.lower()]} (checked, via daphne)"


def shape(dist: str, what: str, used_in: str) -> str:
    """The failure message: what changed, where the site uses it, which version it fits."""
    return (
        f"{what}: {used_in} relies on it as in {pinned(dist)}, but {dist} "
        f"{version(dist)} is installed. Read the use again against this version."
    )


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def check_fingerprint(dist: str, obj: Any, expected: str, used_in: str) -> None:
    name = f"{obj.__module__}.{obj.__qualname__}"
    assert fingerprint(obj) == expected, shape(
        dist, f"the source of {name} changed (sha256 {fingerprint(obj)}, was {expected})", used_in
    )


def bare_signature(obj: Any) -> str:
    """`obj`'s signature without annotations: the names, kinds and defaults called with."""
    signature = inspect.signature(obj)
    parameters = [
        p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def check_signature(dist: str, obj: Any, expected: str, used_in: str) -> None:
    name = f"{obj.__module__}.{obj.__qualname__}"
    found = bare_signature(obj)
    assert found == expected, shape(dist, f"{name} takes {found}, not {expected}", used_in)


def check_attribute(dist: str, owner: Any, name: str, used_in: str) -> None:
    label = getattr(owner, "__qualname__", type(owner).__qualname__)
    assert hasattr(owner, name), shape(dist, f"{label} has no {name}", used_in)


# --- Channels -------------------------------------------------------------------------


def test_channels_async_consumer_call():
    """chat/platform/socket.py `InboxConsumer.__call__` replaces Channels' own (one inbox instead of
    a race of two receive tasks), doing what it did: scope, layer, channel name, base_send."""
    used = "chat/platform/socket.py InboxConsumer.__call__"
    check_signature("channels", AsyncConsumer.__call__, "(self, scope, receive, send)", used)
    check_fingerprint("channels", AsyncConsumer.__call__, "e52238720872dbc3", used)
    check_attribute("channels", AsyncWebsocketConsumer, "channel_layer_alias", used)


def test_channels_dispatch():
    """chat/platform/socket.py `InboxConsumer.dispatch` replaces Channels' (without its thread hop
    before every event), with Channels' `get_handler_name` and `aclose_old_connections`."""
    used = "chat/platform/socket.py InboxConsumer.dispatch"
    check_signature("channels", AsyncConsumer.dispatch, "(self, message)", used)
    check_fingerprint("channels", AsyncConsumer.dispatch, "39f34e7d4fb0f655", used)
    check_signature("channels", get_handler_name, "(message)", used)
    assert inspect.iscoroutinefunction(aclose_old_connections), shape(
        "channels", "channels.db.aclose_old_connections is no coroutine function", used
    )


def test_channels_accept():
    """chat/platform/socket.py `InboxConsumer.accept` calls Channels' with these keywords."""
    used = "chat/platform/socket.py InboxConsumer.accept"
    check_signature(
        "channels", AsyncWebsocketConsumer.accept, "(self, subprotocol=None, headers=None)", used
    )


def test_channels_close():
    """chat/platform/socket.py `InboxConsumer.close` calls Channels' with a plain int code and a
    reason."""
    used = "chat/platform/socket.py InboxConsumer.close"
    check_signature(
        "channels", AsyncWebsocketConsumer.close, "(self, code=None, reason=None)", used
    )


def test_channels_base_send():
    """chat/platform/socket.py sets `base_send` itself (its own `__call__`) and writes frames
    through it (`send_text`, chat/notes/consumer.py): Channels' `send` must go through it too."""
    used = "chat/platform/socket.py InboxConsumer.send_text, chat/notes/consumer.py"
    assert "self.base_send(" in inspect.getsource(AsyncConsumer.send), shape(
        "channels", "AsyncConsumer.send no longer writes through self.base_send", used
    )
    assert "self.base_send = " in inspect.getsource(AsyncConsumer.__call__), shape(
        "channels", "AsyncConsumer.__call__ no longer sets self.base_send", used
    )


def test_channels_database_sync_to_async_thread_handler():
    """chat/platform/db.py `CheckedOncePerInterval.thread_handler` replaces Channels' (close old
    connections around the call) and calls asgiref's `SyncToAsync.thread_handler` itself."""
    used = "chat/platform/db.py CheckedOncePerInterval.thread_handler"
    check_fingerprint("channels", DatabaseSyncToAsync.thread_handler, "00f86b58c522f98e", used)
    check_signature(
        "asgiref",
        DatabaseSyncToAsync.__mro__[1].thread_handler,
        "(self, loop, exc_info, task_context, func, *args, **kwargs)",
        used,
    )


# --- channels-redis -------------------------------------------------------------------


def test_channels_redis_group_key():
    """chat/platform/layers.py `group_send` runs its script on `_group_key(group)`, the sorted set
    of member channels that channels-redis' `group_add` writes (scored by the time added)."""
    used = (
        "chat/platform/layers.py ChatChannelLayer.group_send,"
        " chat/platform/redis/scripts.py GROUP_SEND"
    )
    check_attribute("channels-redis", RedisChannelLayer, "_group_key", used)
    check_signature("channels-redis", RedisChannelLayer._group_key, "(self, group)", used)
    layer = RedisChannelLayer(prefix="shape")
    assert layer._group_key("room-1") == b"shape:group:room-1", shape(
        "channels-redis", f"_group_key gives {layer._group_key('room-1')!r}", used
    )
    check_fingerprint("channels-redis", RedisChannelLayer.group_add, "85ed67999d94bb85", used)


def test_channels_redis_group_send_script():
    """chat/platform/redis/scripts.py `GROUP_SEND` was forked from channels-redis 4.3.0's
    `group_send_lua` (one entry per member worker instead of per channel key): a change
    of the upstream script may be a fix the fork lacks."""
    used = (
        "chat/platform/redis/scripts.py GROUP_SEND"
        " (forked from channels-redis 4.3.0's group_send_lua)"
    )
    source = inspect.getsource(RedisChannelLayer.group_send)
    found = re.search(r'group_send_lua = """(.*?)"""', source, re.S)
    assert found is not None, shape(
        "channels-redis", "RedisChannelLayer.group_send has no group_send_lua script", used
    )
    digest = hashlib.sha256(found.group(1).encode()).hexdigest()[:16]
    assert digest == "269ca0d71ff219c7", shape(
        "channels-redis", f"group_send_lua changed (sha256 {digest}, was 269ca0d71ff219c7)", used
    )
    check_fingerprint("channels-redis", RedisChannelLayer.group_send, "c9623ea6ccfa7308", used)


def test_channels_redis_map_channel_keys_to_connection():
    """chat/platform/layers.py `group_send` replaces the upstream one, which maps channel keys to
    connections with `_map_channel_keys_to_connection`; its entries go to the same
    per-worker queue keys (`prefix + non_local_name(channel)`) that this helper computes."""
    used = "chat/platform/layers.py ChatChannelLayer.send/group_send (queue keys)"
    check_attribute("channels-redis", RedisChannelLayer, "_map_channel_keys_to_connection", used)
    check_signature(
        "channels-redis",
        RedisChannelLayer._map_channel_keys_to_connection,
        "(self, channel_names, message)",
        used,
    )
    check_fingerprint("channels", BaseChannelLayer.non_local_name, "1c760aa27cf174c5", used)


def test_channels_redis_consistent_hash():
    """chat/platform/redis/routing.py `shard_of` is a copy of channels-redis' `_consistent_hash`, so
    that a room's keys live on its group's shard; chat/platform/socket.py and
    chat/platform/layers.py call the layer's `consistent_hash`."""
    used = (
        "chat/platform/redis/routing.py shard_of (a copy of channels_redis.utils._consistent_hash)"
    )
    check_fingerprint("channels-redis", redis_utils._consistent_hash, "a67f87dec0b0b75d", used)
    check_signature("channels-redis", RedisChannelLayer.consistent_hash, "(self, value)", used)
    for shards in (1, 2, 3, 5):
        for name in ("room-1", "room-77", "user-3", "specific.abc!def"):
            assert routing.shard_of(name, shards) == redis_utils._consistent_hash(name, shards), (
                shape("channels-redis", f"_consistent_hash({name!r}, {shards}) moved", used)
            )


def test_channels_redis_connection():
    """chat/platform/layers.py, chat/domain/presence.py, chat/sockets/feeds.py,
    chat/platform/redis/pools.py and others take a shard's client with the layer's
    `connection(index)`; chat/platform/layers.py overrides `create_pool(index)` and reads
    `hosts`, `ring_size`, `prefix`, `client_prefix`."""
    used = "chat/platform/layers.py ChatChannelLayer, chat/platform/redis/pools.py"
    check_signature("channels-redis", RedisChannelLayer.connection, "(self, index)", used)
    check_signature("channels-redis", RedisChannelLayer.create_pool, "(self, index)", used)
    layer = RedisChannelLayer(prefix="shape")
    for name in ("hosts", "ring_size", "prefix", "client_prefix", "expiry", "group_expiry"):
        check_attribute("channels-redis", layer, name, used)
    for name in ("capacity", "brpop_timeout", "get_capacity", "close_pools"):
        check_attribute("channels-redis", layer, name, used)


def test_channels_redis_new_channel_and_receive():
    """chat/platform/layers.py `new_channel` and `receive` wrap channels-redis' own: a worker's
    channel is `specific.<client_prefix>!<random>`, and its queue is read by the site."""
    used = "chat/platform/layers.py ChatChannelLayer.new_channel/receive"
    check_fingerprint("channels-redis", RedisChannelLayer.new_channel, "339845a6686b40a5", used)
    check_fingerprint("channels-redis", RedisChannelLayer.receive, "158a09895d9a7c8e", used)


# --- Django ---------------------------------------------------------------------------


def test_django_health_check_done():
    """chat/platform/db.py sets a connection's private `health_check_done`, which Django's
    `close_if_health_check_failed` reads to skip its `SELECT 1`."""
    used = "chat/platform/db.py CheckedOncePerInterval.thread_handler"
    check_fingerprint(
        "Django", BaseDatabaseWrapper.close_if_health_check_failed, "f72eb45356f4a910", used
    )
    assert "self.health_check_done = " in inspect.getsource(BaseDatabaseWrapper.__init__), shape(
        "Django", "BaseDatabaseWrapper.__init__ no longer sets health_check_done", used
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
