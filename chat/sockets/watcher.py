"""Each worker's housekeeping of its sockets: one watcher task per event loop.

Every CHAT_LAYER_CHECK_INTERVAL (2 s) it
- looks at every shard's epoch: a key kept in Redis, and the shard's
  replication id (`master_replid`). Redis keeps groups only in memory: when
  either changes (a restart empties the shard; Sentinel's promotion of a
  replica changes the id, and the replica may lack the last writes), or
  the shard could not be read, the sockets whose groups or queue live on
  that shard are closed with 4012 as soon as it answers again, and their
  clients resume instead of staying silently deaf. Sockets on other shards
  stay open;
- compares every socket's last message with its room's newest number as of
  the look before (the tail check): a last message the layer dropped shows
  no hole behind it. The look before, so that a message still on its way
  (a broadcast room's waits for its tick) is not read from the database by
  every socket of a busy room, only one that is still missing after an
  interval;
- and every CHAT_HEARTBEAT_SECONDS, refreshes the worker's presence entries
  and sweeps the expired ones of its rooms (chat/domain/presence.py), says the
  worker lives, and takes dead workers out of every group (chat/platform/workers.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import DatabaseError

from chat.domain.presence import presence_heartbeat
from chat.domain.snapshots import rooms_last_numbers
from chat.platform.db import database_sync_to_async
from chat.platform.layers import LAYER_ERRORS
from chat.platform.redis import keys, pools
from chat.platform.workers import worker_heartbeat, workers_reap
from chat.sockets.feeds import feed_hub

logger = logging.getLogger(__name__)


class Watched(Protocol):
    """What the watcher needs of a consumer."""

    @property
    def presence_entry(self) -> tuple[int, str] | None:
        """(room id, Redis member) while the socket counts as online in a room."""
        ...

    def watched_rooms(self) -> Iterable[int]:
        """The rooms whose newest message the socket should have."""
        ...

    def shards(self) -> set[int]:
        """The shards its groups live on (where their messages queue for it)."""
        ...

    async def layer_restarted(self) -> None: ...

    async def catch_up(self, last_numbers: dict[int, int]) -> None: ...


# What a shard is known by: its epoch key's value, and its replication id.
Epoch = tuple[bytes, str]


class EpochWatch:
    """Per event loop: notices a shard that lost its data and closes the sockets it deafened."""

    def __init__(self, layer: RedisChannelLayer) -> None:
        self.layer = layer
        self.epochs: list[Epoch | None] = [None] * layer.ring_size
        self.lost: set[int] = set()
        self.consumers: weakref.WeakSet[Any] = weakref.WeakSet()
        # Each room's newest message number at the tail check before.
        self.last_numbers: dict[int, int] = {}
        self.task: asyncio.Task[None] | None = None

    async def read_epoch(self, shard: int) -> Epoch:
        pipe = self.layer.connection(shard).pipeline(transaction=False)
        pipe.set(keys.epoch(), uuid.uuid4().hex, nx=True)
        pipe.get(keys.epoch())
        pipe.info("replication")
        _, value, replication = await pools.bounded(pipe.execute())
        assert value is not None
        return bytes(value), str(replication.get("master_replid", ""))

    async def check(self) -> None:
        """One look at every shard; closes the sockets of each that lost its data."""
        shards = range(self.layer.ring_size)
        looks = await asyncio.gather(
            *(self.read_epoch(shard) for shard in shards), return_exceptions=True
        )
        restarted: set[int] = set()
        for shard, look in zip(shards, looks, strict=True):
            if isinstance(look, LAYER_ERRORS):
                if shard not in self.lost:
                    logger.warning("channel layer shard %d unreachable: %r", shard, look)
                self.lost.add(shard)
                continue
            if isinstance(look, BaseException):
                raise look
            before = self.epochs[shard]
            if (before is not None and look != before) or shard in self.lost:
                restarted.add(shard)
            self.epochs[shard] = look
            self.lost.discard(shard)
        if restarted:
            await self.close_on(restarted)

    async def close_on(self, shards: set[int]) -> None:
        """Close (4012) every registered socket that depends on one of `shards`."""
        affected = [consumer for consumer in list(self.consumers) if consumer.shards() & shards]
        logger.warning(
            "channel layer shard %s lost its data or came back: closing %d sockets with 4012",
            ",".join(str(shard) for shard in sorted(shards)),
            len(affected),
        )
        for consumer in affected:
            await consumer.layer_restarted()

    async def tail_check(self) -> None:
        """Let every socket catch up to its room's newest message of an interval ago.

        A socket learns of a message when the layer delivers it, or when a later
        one shows the hole; a last message the layer dropped would show neither.
        """
        consumers = list(self.consumers)
        room_ids = {room_id for consumer in consumers for room_id in consumer.watched_rooms()}
        if not room_ids:
            self.last_numbers = {}
            return
        try:
            last_numbers = await database_sync_to_async(rooms_last_numbers)(room_ids=room_ids)
        except DatabaseError as error:
            logger.warning("tail check skipped: %r", error)
            return
        due, self.last_numbers = self.last_numbers, last_numbers
        if due:
            for consumer in consumers:
                await consumer.catch_up(due)

    async def run(self) -> None:
        next_heartbeat = time.monotonic()  # at once: a worker is known from its start
        while True:
            await self.check()
            try:
                await self.tail_check()
            except Exception:  # the watcher must outlive any one socket's failure
                logger.exception("tail check failed")
            try:
                await feed_hub(self.layer).count_viewers()
            except LAYER_ERRORS:
                logger.warning("viewer count failed", exc_info=True)
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + settings.CHAT_HEARTBEAT_SECONDS
                await self.heartbeat()
            await asyncio.sleep(settings.CHAT_LAYER_CHECK_INTERVAL)

    async def heartbeat(self) -> None:
        """Presence, the worker's own heartbeat, and the reaping of dead workers."""
        try:
            await pools.bounded(presence_heartbeat(self.layer, list(self.consumers)))
        except LAYER_ERRORS:
            logger.warning("presence heartbeat failed", exc_info=True)
        try:
            if await worker_heartbeat(self.layer):
                logger.warning("this worker was taken for dead: its sockets missed broadcasts")
                await self.close_on(set(range(self.layer.ring_size)))
            await workers_reap(self.layer)
        except LAYER_ERRORS:
            logger.warning("worker heartbeat failed", exc_info=True)


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
    # A layer without shards (chat/platform/memory.py, the fast tests') has nothing
    # that could restart and no other worker: its watch holds the sockets, never runs.
    runs = layer.ring_size > 0
    if (
        watch is None
        or watch.layer is not layer
        or (runs and (watch.task is None or watch.task.done()))
    ):
        if watch is not None and watch.task is not None:
            watch.task.cancel()  # the layer was replaced (settings changed)
        # Stored before any await, so that concurrent joins share one watcher.
        watch = _watches[loop] = EpochWatch(layer)
        if runs:
            watch.task = loop.create_task(watch.run())
    await watch.check()
    watch.consumers.add(consumer)
    return watch
