"""The Redis channel layer, made to say when it has lost its broadcasts.

Redis keeps groups only in memory: when it restarts, every group is gone and
open sockets would stay silently deaf. Two things catch that:

- a consumer whose own receive fails gets a `chat.layer_lost` event instead of
  an exception (which would kill it with 1011);
- one watcher task per process keeps an epoch key in Redis; when the key
  changes or cannot be read, every socket of the process is closed with 4012
  as soon as Redis answers again, so that clients reconnect and resume.

And it never drops a group message silently: channels-redis refuses a group
message for a process whose queue already holds `capacity` messages, with
nothing but an INFO line. Here each refusal is logged at WARNING with a
running count. The sockets of that process lose nothing: a consumer fills a
hole from the database when the next message arrives, and the watcher's tail
check (every CHAT_LAYER_CHECK_INTERVAL) catches a lost last message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import DatabaseError
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

logger = logging.getLogger(__name__)

# What a failing Redis raises through redis-py and channels-redis.
LAYER_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

# channels-redis' group_send script, returning the keys it refused (over
# capacity) instead of only their number.
_GROUP_SEND_LUA = """
local refused = {}
local now = ARGV[#ARGV - 1]
local expiry = ARGV[#ARGV]
for i = 1, #KEYS do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        table.insert(refused, KEYS[i])
    end
end
return refused
"""
# A process channel's Redis key -> (serialised message, capacity).
Deliveries = dict[str, tuple[bytes, int]]


class ChatChannelLayer(RedisChannelLayer):
    """RedisChannelLayer whose receive reports a lost connection as an event."""

    def create_pool(self, index: int) -> Any:
        # redis-py 8 skips its check of pooled connections (one the server has
        # closed is reconnected before use) whenever "maintenance notifications"
        # are on, and with RESP3 they are on by default ("auto"). After a Redis
        # restart every idle pooled connection then fails its next command once
        # (async connections do not retry): new sockets closed with 4013,
        # broadcasts lost. The notifications serve managed Redis clusters;
        # nothing here uses them. A host entry may still set its own.
        #
        # And a pool that waits for a free connection (up to CHAT_LAYER_TIMEOUT)
        # instead of raising at once: a thousand sockets closing together each
        # make a few calls, and redis-py's default pool refuses the 101st with
        # MaxConnectionsError, which lost their presence leaves and group
        # discards and read to the epoch watch as "Redis is gone".
        host = {
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
            **self.hosts[index],
        }
        address = host.pop("address")
        host.setdefault("timeout", settings.CHAT_LAYER_TIMEOUT)
        return BlockingConnectionPool.from_url(address, **host)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0  # deliveries refused over capacity since start

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """channels-redis' group_send, logging refused deliveries with a running count."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        await connection.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        channel_names = [name.decode("utf8") for name in await connection.zrange(key, 0, -1)]
        if not channel_names:
            return
        by_connection, payloads, capacities = self._map_channel_keys_to_connection(
            channel_names, message
        )
        refused: Deliveries = {}
        for index, channel_keys in by_connection.items():
            deliveries = {key: (payloads[key], capacities[key]) for key in channel_keys}
            refused.update(await self._deliver(index, deliveries))
        if refused:
            self.dropped += len(refused)
            logger.warning(
                "channel layer dropped %d deliveries over capacity in group %s"
                " (%d in all since start)",
                len(refused),
                group,
                self.dropped,
            )

    async def _deliver(self, index: int, deliveries: Deliveries) -> Deliveries:
        """Queue each message on its process channel; the ones refused over capacity."""
        connection = self.connection(index)
        keys = list(deliveries)
        pipe = connection.pipeline()
        for key in keys:
            pipe.zremrangebyscore(key, min=0, max=int(time.time()) - int(self.expiry))
        await pipe.execute()
        args = [deliveries[key][0] for key in keys] + [deliveries[key][1] for key in keys]
        refused = await connection.eval(
            _GROUP_SEND_LUA, len(keys), *keys, *args, time.time(), self.expiry
        )
        return {key.decode("utf8"): deliveries[key.decode("utf8")] for key in refused}

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            return await super().receive(channel)
        except LAYER_ERRORS as error:
            logger.warning("channel layer receive failed: %r", error)
            # The consumer closes on this event; until its disconnect arrives it
            # keeps receiving, so do not spin on a Redis that refuses at once.
            await asyncio.sleep(0.1)
            return {"type": "chat.layer_lost"}


async def first_in(layer: RedisChannelLayer, key: str, seconds: float) -> bool:
    """True for the first call with `key` in `seconds`, over all workers (SET NX PX)."""
    connection = layer.connection(0)
    first = await connection.set(
        f"{layer.prefix}:{key}", 1, nx=True, px=max(1, int(seconds * 1000))
    )
    return bool(first)


class Watched(Protocol):
    """What the watcher needs of a consumer."""

    presence_entry: tuple[int, str] | None

    async def layer_restarted(self) -> None: ...

    async def catch_up(self, last_numbers: dict[int, int]) -> None: ...


class EpochWatch:
    """Per event loop: notices a Redis restart and closes the sockets it deafened."""

    def __init__(self, layer: RedisChannelLayer) -> None:
        self.layer = layer
        self.key = f"{layer.prefix}:epoch"
        self.epoch: bytes | None = None
        self.lost = False
        self.consumers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None

    async def read_epoch(self) -> bytes:
        connection = self.layer.connection(0)
        await connection.set(self.key, uuid.uuid4().hex, nx=True)
        value = await connection.get(self.key)
        assert value is not None
        return bytes(value)

    async def check(self) -> None:
        """One look at the epoch; closes every registered socket after a restart."""
        try:
            epoch = await asyncio.wait_for(self.read_epoch(), settings.CHAT_LAYER_TIMEOUT)
        except LAYER_ERRORS as error:
            if not self.lost:
                logger.warning("channel layer unreachable: %r", error)
            self.lost = True
            return
        restarted = self.epoch is not None and epoch != self.epoch
        if restarted or self.lost:
            logger.warning(
                "channel layer %s: closing %d sockets with 4012",
                "restarted" if restarted else "came back",
                len(self.consumers),
            )
            for consumer in list(self.consumers):
                await consumer.layer_restarted()
        self.epoch = epoch
        self.lost = False

    async def tail_check(self) -> None:
        """Let every socket catch up to its room's newest message.

        A socket learns of a message when the layer delivers it, or when a later
        one shows the hole; a last message the layer dropped would show neither.
        """
        from chat.services import rooms_last_numbers

        consumers = list(self.consumers)
        room_ids = {c.presence_entry[0] for c in consumers if c.presence_entry is not None}
        if not room_ids:
            return
        try:
            last_numbers = await database_sync_to_async(rooms_last_numbers)(room_ids=room_ids)
        except DatabaseError as error:
            logger.warning("tail check skipped: %r", error)
            return
        for consumer in consumers:
            await consumer.catch_up(last_numbers)

    async def run(self) -> None:
        from chat.presence import HEARTBEAT, presence_heartbeat

        next_heartbeat = time.monotonic() + HEARTBEAT
        while True:
            await self.check()
            try:
                await self.tail_check()
            except Exception:  # the watcher must outlive any one socket's failure
                logger.exception("tail check failed")
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + HEARTBEAT
                try:
                    await asyncio.wait_for(
                        presence_heartbeat(self.layer, list(self.consumers)),
                        settings.CHAT_LAYER_TIMEOUT,
                    )
                except LAYER_ERRORS:
                    logger.warning("presence heartbeat failed", exc_info=True)
            await asyncio.sleep(settings.CHAT_LAYER_CHECK_INTERVAL)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EpochWatch] = (
    weakref.WeakKeyDictionary()
)


async def epoch_watch_join(layer: RedisChannelLayer, consumer: Watched) -> EpochWatch:
    """Register a consumer with its loop's watcher, starting it once.

    Call it before the consumer joins its group. Every join takes a fresh look
    at the epoch before registering: a restart the watcher has not noticed yet
    (it looks every CHAT_LAYER_CHECK_INTERVAL) closes the sockets that were
    deafened by it, not this one, whose group_add reaches the Redis of now; a
    restart after this look closes this socket too.
    """
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None or watch.layer is not layer or watch.task is None or watch.task.done():
        if watch is not None and watch.task is not None:
            watch.task.cancel()  # the layer was replaced (settings changed)
        # Stored before any await, so that concurrent joins share one watcher.
        watch = _watches[loop] = EpochWatch(layer)
        watch.task = loop.create_task(watch.run())
    await watch.check()
    watch.consumers.add(consumer)
    return watch
