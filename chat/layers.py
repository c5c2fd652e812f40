"""The Redis channel layer: channels-redis' mechanics, made to say when they fail.

- A consumer whose own receive fails gets a `chat.layer_lost` event instead of
  an exception (which would end it with 4011, internal error); the watcher
  (chat/watcher.py) notices a Redis restart and closes the sockets it deafened.
- A group message is never dropped silently: channels-redis refuses one for a
  process whose queue already holds `capacity` messages, with nothing but an
  INFO line. Here each refusal is logged at WARNING with a running count. The
  sockets of that process lose nothing: a socket fills a hole from the
  database when the next message arrives (chat/delivery.py), and the
  watcher's tail check catches a lost last message.

Receiving is one reader task per process and event loop (`Receiver`): it pops
the process's Redis queue in batches and hands each message to the inboxes of
the channels it names. channels-redis has every waiting consumer race for one
lock per message instead, waking (and cancelling) a task of each of them, which
costs time in proportion to the sockets of the process for every delivery. An
inbox lives from `new_channel` until its consumer stops receiving; a message
for a channel without one (its socket closed) is dropped, where channels-redis
would keep a buffer for the dead channel.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
import weakref
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from chat.redis import pools, scripts

logger = logging.getLogger(__name__)

# What a failing Redis raises through redis-py and channels-redis.
LAYER_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

# A process channel's Redis key -> (serialised message, capacity).
Deliveries = dict[str, tuple[bytes, int]]


# A receiver pops up to this many messages of its process queue at once.
RECEIVE_BATCH = 256
LAYER_LOST = {"type": "chat.layer_lost"}


class Inbox:
    """The messages of one channel of this process, for its one consumer.

    A consumer that also reads its client's events through it (`put_client`)
    waits on one thing instead of racing two tasks for every event; the two
    kinds take turns when both are waiting, and only layer messages are ever
    dropped over capacity.
    """

    __slots__ = ("client", "client_next", "messages", "waiter")

    def __init__(self) -> None:
        self.messages: collections.deque[dict[str, Any]] = collections.deque()
        self.client: collections.deque[dict[str, Any]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.client_next = True

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def put(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.wake()

    def offer(self, message: dict[str, Any], capacity: int) -> bool:
        """put(), dropping the oldest layer message past `capacity`; True if one was dropped.

        A consumer this far behind is stuck; better to lose its oldest than to
        grow without bound (a socket fills message holes from the database).
        """
        dropped = len(self.messages) >= capacity
        if dropped:
            self.messages.popleft()
        self.put(message)
        return dropped

    def put_client(self, message: dict[str, Any]) -> None:
        self.client.append(message)
        self.wake()

    async def get(self) -> dict[str, Any]:
        """The next layer message."""
        while not self.messages:
            await self.wait()
        return self.messages.popleft()

    async def get_any(self) -> dict[str, Any]:
        """The next client event or layer message, the two in turn."""
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
    """One event loop's reader of the process queue, and its channels' inboxes."""

    def __init__(self, layer: ChatChannelLayer) -> None:
        self.layer = layer
        self.inboxes: dict[str, Inbox] = {}
        self.task: asyncio.Task[None] | None = None
        self.overflowed = 0  # messages dropped from full inboxes since start
        self.unclaimed = 0  # messages for channels without an inbox (closed sockets)

    def inbox(self, channel: str) -> Inbox:
        inbox = self.inboxes.get(channel)
        if inbox is None:
            inbox = self.inboxes[channel] = Inbox()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.read())
        return inbox

    def deliver(self, raw: bytes) -> None:
        message = self.layer.deserialize(raw)
        channels = message.pop("__asgi_channel__")
        for channel in [channels] if isinstance(channels, str) else channels:
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

    async def read(self) -> None:
        layer = self.layer
        queue = layer.process_queue
        key = layer.prefix + queue
        index = layer.consistent_hash(queue)
        while self.inboxes:
            try:
                connection = layer.connection(index)
                popped = await connection.bzpopmin(key, timeout=layer.brpop_timeout)
                if popped is None:
                    continue
                batch = [popped[1]]
                # Whatever else has queued up meanwhile, in the same order.
                batch += [member for member, _ in await connection.zpopmin(key, RECEIVE_BATCH)]
            except LAYER_ERRORS as error:
                logger.warning("channel layer receive failed: %r", error)
                # Every consumer of the process may have missed messages: each
                # closes on this event (its client resumes), and new ones that
                # join meanwhile get the same until Redis answers again.
                for inbox in list(self.inboxes.values()):
                    if not inbox.messages or inbox.messages[-1] is not LAYER_LOST:
                        inbox.put(LAYER_LOST)
                await asyncio.sleep(0.1)
                continue
            for raw in batch:
                try:
                    self.deliver(raw)
                except Exception:  # one bad message must not deafen the process
                    logger.exception("undeliverable channel layer message")

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


class ChatChannelLayer(RedisChannelLayer):
    """RedisChannelLayer whose receive reports a lost connection as an event."""

    def create_pool(self, index: int) -> Any:
        """Shard `index`'s pool: plain or through Sentinel, blocking (chat.redis.pools)."""
        return pools.layer_pool(self.hosts[index])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0  # deliveries refused over capacity since start
        self.queue_placed = False
        self.placing = asyncio.Lock()
        self.receivers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Receiver] = (
            weakref.WeakKeyDictionary()
        )

    async def queue_shard(self) -> int:
        """The shard of this worker's queue, placed first if need be."""
        if not self.queue_placed:
            await self.queue_place()
        return self.consistent_hash(self.process_queue)

    async def queue_place(self) -> None:
        """Put this worker's queue on a shard of its choice (chat.workers.queue_shard_choose),
        once, before its first channel: a channel's name carries the client prefix, and
        the prefix decides the queue's shard."""
        from chat.workers import queue_shard_choose, worker_heartbeat

        async with self.placing:
            if self.queue_placed:
                return
            if self.ring_size > 1:
                shard = await queue_shard_choose(self)
                while self.consistent_hash(self.process_queue) != shard:
                    self.client_prefix = uuid.uuid4().hex
            self.queue_placed = True
            try:
                await worker_heartbeat(self)  # counted at once by the next worker to start
            except LAYER_ERRORS:
                logger.warning("worker heartbeat failed", exc_info=True)

    def receiver(self) -> Receiver:
        loop = asyncio.get_running_loop()
        receiver = self.receivers.get(loop)
        if receiver is None:
            receiver = self.receivers[loop] = Receiver(self)
        return receiver

    @property
    def process_queue(self) -> str:
        """The Redis queue (less the prefix) of this process's consumer channels."""
        return f"specific.{self.client_prefix}!"

    def inbox(self, channel: str) -> Inbox:
        """The inbox of a channel of this process (made by new_channel)."""
        return self.receiver().inbox(channel)

    def discard_inbox(self, channel: str) -> None:
        """The channel's consumer has stopped: what arrives for it from now on is dropped."""
        self.receiver().inboxes.pop(channel, None)

    async def new_channel(self, prefix: str = "specific") -> str:
        if not self.queue_placed:
            await self.queue_place()
        channel = await super().new_channel(prefix)
        if channel.startswith(self.process_queue):
            # Messages may arrive before the consumer's first receive.
            self.inbox(channel)
        return channel

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """channels-redis' group_send, logging refused deliveries with a running count."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        pipe = connection.pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        _, members = await pipe.execute()
        channel_names = [name.decode("utf8") for name in members]
        if not channel_names:
            return
        by_connection, payloads, capacities = self._map_channel_keys_to_connection(
            channel_names, message
        )
        # The workers' queues may live on several shards: each is written at once.
        answers = await asyncio.gather(
            *(
                self._deliver(index, {key: (payloads[key], capacities[key]) for key in keys})
                for index, keys in by_connection.items()
            )
        )
        refused: Deliveries = {key: value for answer in answers for key, value in answer.items()}
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
        args = [deliveries[key][0] for key in keys] + [deliveries[key][1] for key in keys]
        now = time.time()
        refused = await connection.eval(
            scripts.GROUP_SEND,
            len(keys),
            *keys,
            *args,
            now,
            self.expiry,
            int(now) - int(self.expiry),
        )
        return {key.decode("utf8"): deliveries[key.decode("utf8")] for key in refused}

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message of a channel; a lost Redis is a `chat.layer_lost` event.

        A cancelled receive of a process channel ends it: consumers receive
        until they stop, and then nobody will again.
        """
        if not channel.startswith(self.process_queue):
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        receiver = self.receiver()
        try:
            return await receiver.inbox(channel).get()
        except asyncio.CancelledError:
            self.discard_inbox(channel)
            raise

    async def close_pools(self) -> None:
        for receiver in list(self.receivers.values()):
            receiver.close()
        await super().close_pools()
