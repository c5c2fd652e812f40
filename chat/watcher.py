"""Each worker's housekeeping of its sockets: one watcher task per event loop.

Every CHAT_LAYER_CHECK_INTERVAL (2 s) it
- looks at an epoch key kept in Redis: Redis keeps groups only in memory, so
  when the key changes (a restart) or could not be read, every socket of the
  worker is closed with 4012 as soon as Redis answers again, and its client
  resumes instead of staying silently deaf;
- compares every socket's last message with its room's newest number as of
  the look before (the tail check): a last message the layer dropped shows
  no hole behind it. The look before, so that a message still on its way
  (a broadcast room's waits for its tick) is not read from the database by
  every socket of a busy room, only one that is still missing after an
  interval;
- and every presence.HEARTBEAT, refreshes the worker's presence entries and
  sweeps the expired ones of its rooms (chat/presence.py).
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

from chat.db import database_sync_to_async
from chat.feeds import feed_hub
from chat.layers import LAYER_ERRORS
from chat.presence import HEARTBEAT, presence_heartbeat
from chat.services import rooms_last_numbers

logger = logging.getLogger(__name__)


class Watched(Protocol):
    """What the watcher needs of a consumer."""

    # (room id, Redis member) while the socket counts as online in a room.
    presence_entry: tuple[int, str] | None

    def watched_rooms(self) -> Iterable[int]:
        """The rooms whose newest message the socket should have."""
        ...

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
        # Each room's newest message number at the tail check before.
        self.last_numbers: dict[int, int] = {}
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
        next_heartbeat = time.monotonic() + HEARTBEAT
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
