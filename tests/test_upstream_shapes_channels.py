"""The internals of Channels, channels-redis and Django the site relies on, pinned.

Each test fails, naming the version the site was checked against, when a private
name it uses is gone or has changed shape; why the site reaches there, and how the
fingerprints work, is told in tests/upstream_shapes_helpers.py.
"""

from __future__ import annotations

import hashlib
import inspect
import re

from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import DatabaseSyncToAsync, aclose_old_connections
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import BaseChannelLayer
from channels_redis import utils as redis_utils
from channels_redis.core import RedisChannelLayer
from django.db.backends.base.base import BaseDatabaseWrapper

from chat.platform.redis import routing
from tests.upstream_shapes_helpers import check_attribute, check_fingerprint, check_signature, shape

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
