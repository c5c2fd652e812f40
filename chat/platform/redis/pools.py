"""The connection pools: async ones for the channel layer and the sockets, sync ones for
views; blocking, and through Sentinel where the shard is a Sentinel master.

Every call made with them is bounded by CHAT_LAYER_TIMEOUT (`bounded`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis
from django.conf import settings
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.maint_notifications import MaintNotificationsConfig
from redis.sentinel import Sentinel

from chat.platform.redis.config import describe_host
from chat.platform.redis.routing import room_shard, shard_of, user_shard

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (it finds the master, and finds it again after a failover) that
    waits for a free connection as BlockingConnectionPool does, instead of raising."""


def layer_pool(host: dict[str, Any]) -> Any:
    """The async pool of one of the layer's `hosts` entries
    (chat.platform.redis.config.layer_hosts).

    redis-py 8 skips its check of pooled connections (one the server has closed
    is reconnected before use) whenever "maintenance notifications" are on, and
    with RESP3 they are on by default ("auto"). After a Redis restart every idle
    pooled connection then failed its next command once (async connections do
    not retry): new sockets closed with 4013, broadcasts lost. The notifications
    serve managed Redis clusters; nothing here uses them. A host entry may
    still set its own.

    The pool waits for a free connection (up to CHAT_LAYER_TIMEOUT) instead of
    raising at once: a thousand sockets closing together each make a few
    calls, and redis-py's default pool refused the 101st with
    MaxConnectionsError, which lost their presence leaves and group discards.
    """
    host = {
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
        **host,
    }
    host.setdefault("timeout", settings.CHAT_LAYER_TIMEOUT)
    if "address" in host:
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
    master = host.pop("master_name")
    sentinels = [tuple(address) for address in host.pop("sentinels")]
    manager = AsyncSentinel(sentinels, sentinel_kwargs=host.pop("sentinel_kwargs", None))
    return BlockingSentinelConnectionPool(master, manager, **host)


def layer_hosts() -> list[dict[str, Any]]:
    """The shards of the default channel layer, as settings name them."""
    layers: Any = settings.CHANNEL_LAYERS
    return list(layers["default"]["CONFIG"]["hosts"])


def shard_count() -> int:
    return len(layer_hosts())


def sync_client(index: int) -> redis.Redis:
    """A blocking client of shard `index`, for views (one pool per process and shard)."""
    return _sync_client(json.dumps(layer_hosts()[index], sort_keys=True, default=str))


@functools.cache
def _sync_client(host_json: str) -> redis.Redis:
    host = json.loads(host_json)
    timeout = settings.CHAT_LAYER_TIMEOUT
    if "address" in host:
        return redis.Redis.from_url(
            host["address"], socket_timeout=timeout, socket_connect_timeout=timeout
        )
    sentinel = Sentinel(
        [tuple(address) for address in host["sentinels"]],
        sentinel_kwargs=host.get("sentinel_kwargs"),
    )
    return sentinel.master_for(
        host["master_name"], socket_timeout=timeout, socket_connect_timeout=timeout
    )


def sync_for(name: str) -> redis.Redis:
    """The blocking client of the shard where the key (or group) `name` lives."""
    return sync_client(shard_of(name, shard_count()))


def sync_for_room(room_id: int) -> redis.Redis:
    return sync_client(room_shard(room_id, shard_count()))


def sync_for_user(user_id: int) -> redis.Redis:
    return sync_client(user_shard(user_id, shard_count()))


def for_room(layer: Any, room_id: int) -> Any:
    """The layer's async client of the shard of a room's keys."""
    return layer.connection(room_shard(room_id, layer.ring_size))


def for_user(layer: Any, user_id: int) -> Any:
    """The layer's async client of the shard of a user's keys."""
    return layer.connection(user_shard(user_id, layer.ring_size))


def for_name(layer: Any, name: str) -> Any:
    """The layer's async client of the shard where the key (or group) `name` lives."""
    return layer.connection(shard_of(name, layer.ring_size))


async def bounded(awaitable: Awaitable[T]) -> T:
    """`awaitable`, or TimeoutError after CHAT_LAYER_TIMEOUT: no Redis call waits longer."""
    async with asyncio.timeout(settings.CHAT_LAYER_TIMEOUT):
        return await awaitable


async def first_in(connection: Any, key: str, seconds: float) -> bool:
    """True for the first call with `key` in `seconds`, over all workers (SET NX PX)."""
    first = await bounded(connection.set(key, 1, nx=True, px=max(1, int(seconds * 1000))))
    return bool(first)


async def shards_ping(layer: Any) -> list[BaseException | None]:
    """Ping every shard of `layer` at once; for each, None or what it raised."""

    async def ping(shard: int) -> BaseException | None:
        try:
            await bounded(layer.connection(shard).ping())
        except Exception as error:  # anything a shard raises means it cannot serve
            return error
        return None

    return list(await asyncio.gather(*(ping(shard) for shard in range(layer.ring_size))))


def shard_names(layer: Any) -> list[str]:
    """What to call each shard of `layer` in logs and /healthz: never a password."""
    return [describe_host(host) for host in layer.hosts]
