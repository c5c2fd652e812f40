"""The Redis channel layer: channels-redis' groups and names, with its own queues and reader.

- **One queue per worker on every shard.** A worker's process queue (the key of
  `specific.<client prefix>!`) exists on each shard, and the worker reads all of
  them. A group send then queues its message on the group's own shard, in one
  script that reads the group and writes each member worker's entry (one Redis
  round trip, however many shards): a room's traffic stays on its shard.
- **An entry names its channels.** Each entry is 12 random bytes (so that equal
  messages stay distinct in the sorted set), the names of the worker's member
  channels, comma-separated, a newline, and the message in msgpack.
- **One reader per worker and shard** (`Receiver`) pops its queue in batches
  (BZMPOP, or BZPOPMIN then ZPOPMIN on a Redis older than 7) and hands each
  message to the inboxes of the channels it names. channels-redis has every
  waiting consumer race for one lock per message instead, which costs time in
  proportion to the worker's sockets for every delivery. An inbox lives from
  `new_channel` until its consumer stops receiving; a message for a channel
  without one (its socket closed) is dropped.
- **Failures are said.** A reader whose shard fails hands every inbox a
  `chat.layer_lost` event naming the shard; a socket whose groups live there
  closes (4012) and its client resumes, the others carry on (the watcher,
  chat/sockets/watcher.py, also notices a shard that restarted). A group message is
  never dropped silently: one for a worker whose queue holds `capacity`
  entries is refused, and each refusal logged at WARNING with a running count;
  the sockets of that worker fill the hole from the database.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError, ResponseError

from chat.platform.redis import pools, scripts

logger = logging.getLogger(__name__)

# What a failing Redis raises through redis-py and channels-redis.
LAYER_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

# A reader pops up to this many entries of its queue at once.
RECEIVE_BATCH = 256
# An entry: random bytes (distinct entries), the channels, a newline, the message.
ENTRY_HEAD = 12


def layer_lost(shard: int) -> dict[str, Any]:
    """The event a reader hands every inbox when its shard fails."""
    return {"type": "chat.layer_lost", "shard": shard}


def entry(channels: list[str], message: dict[str, Any]) -> bytes:
    """A queue entry for `channels` of one worker (as the group send script writes one)."""
    head = random.getrandbits(8 * ENTRY_HEAD).to_bytes(ENTRY_HEAD, "big")
    return head + ",".join(channels).encode() + b"\n" + packed(message)


def packed(message: dict[str, Any]) -> bytes:
    return bytes(msgpack.packb(message, use_bin_type=True))


def entry_read(raw: bytes) -> tuple[list[str], dict[str, Any]]:
    """(the channels, the message) of a queue entry."""
    channels, _, body = raw[ENTRY_HEAD:].partition(b"\n")
    message = msgpack.unpackb(body, raw=False)
    assert isinstance(message, dict)
    return channels.decode().split(","), message


class Local:
    """A call of this process's own (a timer's), made in turn with an inbox's messages.

    Not a channel-layer message: it never leaves the process, is never dropped
    over capacity, and once cancelled is not made even if it is already queued.
    """

    __slots__ = ("call", "cancelled", "handle")

    def __init__(self, call: Callable[[], Awaitable[None]]) -> None:
        self.call = call
        self.cancelled = False
        self.handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()

    async def run(self) -> None:
        if not self.cancelled:
            await self.call()


class Inbox:
    """The messages of one channel of this process, for its one consumer.

    A consumer that also reads its client's events through it (`put_client`)
    waits on one thing instead of racing two tasks for every event; the two
    kinds take turns when both are waiting, and only layer messages are ever
    dropped over capacity. Its own timers come back through it too (`later`),
    in turn with the layer messages.
    """

    __slots__ = ("client", "client_next", "messages", "waiter")

    def __init__(self) -> None:
        self.messages: collections.deque[dict[str, Any] | Local] = collections.deque()
        self.client: collections.deque[dict[str, Any]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.client_next = True

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def put(self, message: dict[str, Any] | Local) -> None:
        self.messages.append(message)
        self.wake()

    def offer(self, message: dict[str, Any], capacity: int) -> bool:
        """put(), dropping the oldest layer message past `capacity`; True if one was dropped.

        A consumer this far behind is stuck; better to lose its oldest than to
        grow without bound (a socket fills message holes from the database).
        """
        dropped = False
        if len(self.messages) >= capacity:
            for index, oldest in enumerate(self.messages):
                if not isinstance(oldest, Local):  # a timer is never lost
                    del self.messages[index]
                    dropped = True
                    break
        self.put(message)
        return dropped

    def later(self, delay: float, call: Callable[[], Awaitable[None]]) -> Local:
        """Have `call()` made after `delay` seconds, in turn with the inbox's messages."""
        local = Local(call)
        local.handle = asyncio.get_running_loop().call_later(delay, self.put, local)
        return local

    def put_client(self, message: dict[str, Any]) -> None:
        self.client.append(message)
        self.wake()

    async def get(self) -> dict[str, Any] | Local:
        """The next layer message or local call."""
        while not self.messages:
            await self.wait()
        return self.messages.popleft()

    async def get_any(self) -> dict[str, Any] | Local:
        """The next client event, or layer message or local call, the two kinds in turn."""
        while not (self.messages or self.client):
            await self.wait()
        if self.client and (self.client_next or not self.messages):
            self.client_next = False
            return self.client.popleft()
        self.client_next = True
        return self.messages.popleft()

    async def wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


class Receiver:
    """One event loop's readers of the worker's queue, one per shard, and its inboxes."""

    def __init__(self, layer: ChatChannelLayer) -> None:
        self.layer = layer
        self.inboxes: dict[str, Inbox] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.overflowed = 0  # messages dropped from full inboxes since start
        self.unclaimed = 0  # messages for channels without an inbox (closed sockets)
        self.bzmpop = True  # False on a Redis older than 7 (no BZMPOP)

    def inbox(self, channel: str) -> Inbox:
        inbox = self.inboxes.get(channel)
        if inbox is None:
            inbox = self.inboxes[channel] = Inbox()
        for shard in range(self.layer.ring_size):
            task = self.tasks.get(shard)
            if task is None or task.done():
                self.tasks[shard] = asyncio.get_running_loop().create_task(self.read(shard))
        return inbox

    def deliver(self, raw: bytes) -> None:
        channels, message = entry_read(raw)
        for channel in channels:
            inbox = self.inboxes.get(channel)
            if inbox is None:
                self.unclaimed += 1
                continue
            if inbox.offer(message, self.layer.capacity):
                self.overflowed += 1
                logger.warning(
                    "inbox of %s over capacity: dropped its oldest message (%d in all)",
                    channel,
                    self.overflowed,
                )

    async def pop(self, connection: Any, key: str) -> list[bytes]:
        """The entries of the queue, oldest first, waiting up to brpop_timeout for one."""
        timeout = self.layer.brpop_timeout
        if self.bzmpop:
            try:
                popped = await connection.bzmpop(timeout, 1, [key], min=True, count=RECEIVE_BATCH)
            except ResponseError as error:
                if "unknown command" not in str(error).lower():
                    raise
                self.bzmpop = False  # Redis 6: two commands instead
            else:
                return [member for member, _ in popped[1]] if popped else []
        popped = await connection.bzpopmin(key, timeout=timeout)
        if popped is None:
            return []
        # Whatever else has queued up meanwhile, in the same order.
        rest = await connection.zpopmin(key, RECEIVE_BATCH)
        return [popped[1], *(member for member, _ in rest)]

    async def read(self, shard: int) -> None:
        layer = self.layer
        key = layer.prefix + layer.process_queue
        while self.inboxes:
            try:
                batch = await self.pop(layer.connection(shard), key)
            except LAYER_ERRORS as error:
                logger.warning("channel layer receive failed on shard %d: %r", shard, error)
                # The sockets whose groups live on this shard may have missed
                # messages: each closes on this event (its client resumes), and
                # new ones that join meanwhile get the same until it answers again.
                lost = layer_lost(shard)
                for inbox in list(self.inboxes.values()):
                    if not inbox.messages or inbox.messages[-1] != lost:
                        inbox.put(lost)
                await asyncio.sleep(0.1)
                continue
            for raw in batch:
                try:
                    self.deliver(raw)
                except Exception:  # one bad message must not deafen the worker
                    logger.exception("undeliverable channel layer message")

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()


class ChatChannelLayer(RedisChannelLayer):
    """RedisChannelLayer with a queue per worker on every shard, read by one reader
    each, a group send of one round trip, and failures that are said."""

    def create_pool(self, index: int) -> Any:
        """Shard `index`'s pool: plain or through Sentinel, blocking (chat.platform.redis.pools)."""
        return pools.layer_pool(self.hosts[index])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0  # deliveries refused over capacity since start
        self.receivers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Receiver] = (
            weakref.WeakKeyDictionary()
        )

    def receiver(self) -> Receiver:
        loop = asyncio.get_running_loop()
        receiver = self.receivers.get(loop)
        if receiver is None:
            receiver = self.receivers[loop] = Receiver(self)
        return receiver

    @property
    def process_queue(self) -> str:
        """The Redis queue (less the prefix) of this worker's channels, on every shard."""
        return f"specific.{self.client_prefix}!"

    def inbox(self, channel: str) -> Inbox:
        """The inbox of a channel of this worker (made by new_channel)."""
        return self.receiver().inbox(channel)

    def discard_inbox(self, channel: str) -> None:
        """The channel's consumer has stopped: what arrives for it from now on is dropped."""
        self.receiver().inboxes.pop(channel, None)

    async def new_channel(self, prefix: str = "specific") -> str:
        channel = await super().new_channel(prefix)
        if channel.startswith(self.process_queue):
            # Messages may arrive before the consumer's first receive.
            self.inbox(channel)
        return channel

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """A message for one channel of a worker, queued on the channel's shard."""
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        if "!" not in channel:
            return await super().send(channel, message)
        key = self.prefix + self.non_local_name(channel)
        now = time.time()
        refused = await scripts.QUEUE_ONE.run(
            self.connection(self.consistent_hash(channel)),
            1,
            key,
            entry([channel], message),
            now,
            int(now) - int(self.expiry),
            self.expiry,
            self.get_capacity(channel),
        )
        if refused:
            self.refused(1, channel)
        return None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Queue `message` for every member of `group`: one script on the group's shard
        reads the group and writes one entry to each member worker's queue there."""
        assert self.require_valid_group_name(group), "Group name not valid"
        now = time.time()
        refused = await scripts.GROUP_SEND.run(
            self.connection(self.consistent_hash(group)),
            1,
            self._group_key(group),
            now,
            int(now) - self.group_expiry,
            self.prefix,
            random.getrandbits(8 * ENTRY_HEAD).to_bytes(ENTRY_HEAD, "big"),
            packed(message),
            self.expiry,
            int(now) - int(self.expiry),
            self.capacity,
        )
        if refused:
            self.refused(len(refused), f"group {group}")

    def refused(self, count: int, where: str) -> None:
        self.dropped += count
        logger.warning(
            "channel layer dropped %d deliveries over capacity in %s (%d in all since start)",
            count,
            where,
            self.dropped,
        )

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message of a channel; a failing shard is a `chat.layer_lost` event.

        A cancelled receive of a worker's channel ends it: consumers receive until
        they stop, and then nobody will again.
        """
        if not channel.startswith(self.process_queue):
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        receiver = self.receiver()
        try:
            message = await receiver.inbox(channel).get()
        except asyncio.CancelledError:
            self.discard_inbox(channel)
            raise
        # Local calls go only to the inboxes this process reads itself (sockets, feeds).
        assert not isinstance(message, Local)
        return message

    async def close_pools(self) -> None:
        for receiver in list(self.receivers.values()):
            receiver.close()
        await super().close_pools()
