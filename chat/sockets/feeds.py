"""A worker's subscriptions to rooms: one member of a room's group per worker, not per socket.

channels-redis makes every socket a member of its room's group: each group
send reads every member's name out of Redis and writes them, all of them,
into the message it queues for each worker. For a room of 5,000 viewers on
two workers that is 2,500 names in every message to each. Here a worker
joins a room's group once, with a channel of its own for that room (a
`Feed`), and hands each event of the room to the inboxes of its sockets in
the room. A group send then costs the same for a room of 2 and of 5,000.

A feed lives while at least one socket of the worker is in its room. Every
join adds the feed to the group again (refreshing its expiry): the group in
Redis is current whenever a socket has joined, which is what a socket reads
its backlog after. A member's inbox past capacity drops its oldest event
with a WARNING (`Inbox.offer`); a socket fills the hole from the database.

Broadcast rooms batch (`CHAT_BATCH_TICK`): a feed hands its sockets their
room's messages at most once a tick, and the `chat.message` events that
arrived meanwhile go out as one `chat.messages` event, in id order and
without a gap, with the one `messages` frame of them all made once. A
message that finds the feed idle for a tick goes out at once. The tick
counts from the end of the last batch: under load the batches grow, as the
cost of a batch is that of writing to each socket whatever it carries. A feed
puts its room's messages in order once for the worker's sockets (a
`Sequence`, chat/sockets/sequence.py): a message that arrives ahead of a
missing one waits at the feed (CHAT_HOLE_WAIT), and the hole is read from the
database once for the worker, not by each socket; if that read fails, the
messages after the hole go to each socket as they are, and each socket finds
the hole itself (closing, 4013, if it cannot read it either). The tick's
frame is written straight to every socket that can take it as it is
(chat/sockets/audience.py); any other gets the event in its inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError

from chat.domain import events
from chat.platform.layers import Inbox, Local
from chat.platform.loops import PerLoop
from chat.platform.redis import keys, pools
from chat.platform.redis.routing import shard_of
from chat.platform.wire import SharedText
from chat.sockets.batcher import Batcher, Event
from chat.sockets.holes import messages_missing

logger = logging.getLogger(__name__)

# A batch handed to this many sockets lets the event loop run other work.
YIELD_EVERY = 256


class Member(Protocol):
    """What a feed needs of a socket."""

    inbox: Inbox
    # True for a room's own socket: a viewer of a broadcast room. A page's /ws/me/
    # socket is a member of the room's group too, to count unread messages, and
    # watches nothing.
    watches: bool

    def take_batch(self, batch: dict[str, Any]) -> bool:
        """Write a `chat.messages` event's frame now; False to get the event in the inbox."""
        ...


class Feed:
    """One worker's membership of one room's group, shared by its sockets there."""

    def __init__(self, hub: FeedHub, group: str, *, batched: bool) -> None:
        self.hub = hub
        self.group = group
        self.channel = ""
        self.members: set[Any] = set()
        # Sockets watching the room on every worker, as last counted (broadcast rooms),
        # and as last told to the sockets.
        self.viewers = 0
        self.announced: int | None = 0
        self.task: asyncio.Task[None] | None = None
        # Broadcast rooms: the room's messages in order, a tick at a time.
        self.batcher: Batcher | None = None
        if batched:
            self.batcher = Batcher(
                send=self.send_batch,
                hand_out=self.hand_out,
                read_missing=self.read_missing,
                later=self.later,
                tick=settings.CHAT_BATCH_TICK,
                hole_wait=settings.CHAT_HOLE_WAIT,
                clock=time.monotonic,
            )

    @property
    def batched(self) -> bool:
        return self.batcher is not None

    async def start(self) -> None:
        layer = self.hub.layer
        self.channel = await layer.new_channel()
        self.task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.batcher is not None:
            self.batcher.close()
        self.hub.layer.discard_inbox(self.channel)

    def later(self, delay: float, call: Callable[[], Awaitable[None]]) -> Local:
        """`call()` after `delay`, in turn with the feed's events."""
        return self.hub.layer.inbox(self.channel).later(delay, call)

    async def run(self) -> None:
        inbox = self.hub.layer.inbox(self.channel)
        while True:
            message = await inbox.get()
            if isinstance(message, Local):
                await message.run()  # the batcher's timers
            elif message["type"] == "chat.layer_lost":
                continue  # every socket of the worker hears of it in its own inbox
            elif self.batcher is None:
                self.hand_out(message)
            elif message["type"] == "chat.message":
                self.batcher.arrived(message)
            else:
                await self.batcher.flush()  # the messages before it go first
                self.hand_out(message)

    async def read_missing(self, room_id: int, after: int, before: int) -> list[Event] | None:
        """A hole of the room, read from the database once for the worker."""
        try:
            missing = await messages_missing(room_id=room_id, after=after, before=before)
        except DatabaseError:
            logger.warning(
                "could not fill a hole of %s before %s", self.group, before, exc_info=True
            )
            return None
        return [events.chat_message(message) for message in missing]

    async def send_batch(self, first: int, last: int, batch: list[Event]) -> None:
        """Messages `first`..`last` (any absent were deleted) as one event; its `text` is the
        one `messages` frame of them all, made once for every socket."""
        text: str | None = None
        if batch:
            text = SharedText(
                '{"type":"messages","messages":[' + ",".join(e["text"] for e in batch) + "]}"
            )
        message = {
            "type": "chat.messages",
            # A list, as the channel layer (msgpack) could carry it; a tick has few authors.
            "authors": sorted({event["author_id"] for event in batch}),
            "events": batch,
            "first": first,
            "last": last,
            "text": text,
        }
        capacity = self.hub.layer.capacity
        for count, member in enumerate(list(self.members), 1):
            if not member.take_batch(message):
                self.offer(member, message, capacity)
            if count % YIELD_EVERY == 0:
                # Let the worker's other work run (its reader of Redis among it): the
                # room's next events come from this task alone, so none overtakes this.
                await asyncio.sleep(0)

    def watching(self) -> int:
        """The room's own sockets among the members: viewers, not /ws/me/ sockets."""
        return sum(1 for member in self.members if member.watches)

    def hand_out(self, message: dict[str, Any]) -> None:
        capacity = self.hub.layer.capacity
        for member in list(self.members):
            self.offer(member, message, capacity)

    def offer(self, member: Member, message: dict[str, Any], capacity: int) -> None:
        if member.inbox.offer(message, capacity):
            self.hub.dropped += 1
            logger.warning(
                "inbox of a socket in %s over capacity: dropped its oldest event (%d in all)",
                self.group,
                self.hub.dropped,
            )


class FeedHub:
    """Per event loop and layer: the feeds of the worker's rooms."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.feeds: dict[str, Feed] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.dropped = 0

    async def join(self, group: str, member: Member, *, batched: bool = False) -> None:
        """Have `member` get the group's events; the group holds the feed once this returns.

        Only a feed's first member and its last wait for the group's lock: a
        crowd arriving or leaving does not queue behind one another.
        """
        feed = self.feeds.get(group)
        if feed is None:
            async with self.locks.setdefault(group, asyncio.Lock()):
                feed = self.feeds.get(group)
                if feed is None:
                    feed = Feed(self, group, batched=batched)
                    await feed.start()
                    self.feeds[group] = feed
                feed.members.add(member)
        else:
            feed.members.add(member)
        try:
            # Every join refreshes the group entry, and with it its expiry.
            await pools.bounded(self.layer.group_add(group, feed.channel))
        except BaseException:
            with contextlib.suppress(Exception):
                await self.leave(group, member)
            raise

    async def leave(self, group: str, member: Member) -> None:
        """`member` is gone; the last one out takes the feed out of the group."""
        feed = self.feeds.get(group)
        if feed is None or member not in feed.members:
            return
        feed.members.discard(member)
        if feed.members:
            return
        async with self.locks.setdefault(group, asyncio.Lock()):
            if self.feeds.get(group) is not feed or feed.members:
                return  # someone joined meanwhile
            del self.feeds[group]
            feed.stop()
            # The group entry expires with the layer's group_expiry if this fails.
            await pools.bounded(self.layer.group_discard(group, feed.channel))
            if feed.batched:
                connection = pools.for_name(self.layer, group)
                await pools.bounded(connection.hdel(keys.viewers(group), self.worker))

    def members(self, group: str) -> int:
        """How many sockets of this worker are in the group."""
        feed = self.feeds.get(group)
        return len(feed.members) if feed is not None else 0

    def watching(self, group: str) -> int:
        """How many sockets of this worker watch the group's room (its viewers here)."""
        feed = self.feeds.get(group)
        return feed.watching() if feed is not None else 0

    # --- viewers of broadcast rooms, over every worker --------------------------------------

    @property
    def worker(self) -> str:
        return str(self.layer.client_prefix)

    async def count_viewers(
        self, groups: list[str] | None = None, *, announce: bool = True
    ) -> None:
        """Tell Redis how many sockets this worker has in each broadcast room, and read
        the totals; with `announce`, a total that changed goes to the worker's sockets
        as `viewers`.

        Every CHAT_LAYER_CHECK_INTERVAL (chat/sockets/watcher.py), announced; and when a
        socket joins, for its welcome alone: a crowd arriving would otherwise be
        told of each newcomer, which costs the square of its size.
        A worker that died stops renewing its count, which then no longer adds up.
        """
        feeds = [
            feed
            for group, feed in self.feeds.items()
            if feed.batched and (groups is None or group in groups)
        ]
        if not feeds:
            return
        now = time.time()
        ttl = settings.CHAT_LAYER_CHECK_INTERVAL * 5
        by_shard: dict[int, list[Feed]] = {}
        for feed in feeds:
            by_shard.setdefault(shard_of(feed.group, self.layer.ring_size), []).append(feed)

        async def exchange(shard: int, feeds: list[Feed]) -> list[Any]:
            pipe = self.layer.connection(shard).pipeline(transaction=False)
            for feed in feeds:
                key = keys.viewers(feed.group)
                pipe.hset(key, self.worker, f"{feed.watching()}:{now + ttl}")
                pipe.expire(key, int(ttl * 2))
                pipe.hgetall(key)
            return list(await pipe.execute())

        # A room's count on its own shard; the shards at once.
        shards = list(by_shard.items())
        answers = await pools.bounded(
            asyncio.gather(*(exchange(shard, feeds) for shard, feeds in shards))
        )
        counts: dict[str, dict[Any, Any]] = {}
        for (_, shard_feeds), answer in zip(shards, answers, strict=True):
            for index, feed in enumerate(shard_feeds):
                counts[feed.group] = answer[3 * index + 2]
        for feed in feeds:
            if self.feeds.get(feed.group) is not feed:
                # Its last socket left while the count was on its way: the count may
                # have landed after leave() took this worker's entry out. Out again.
                if feed.group not in self.feeds:
                    connection = pools.for_name(self.layer, feed.group)
                    await pools.bounded(connection.hdel(keys.viewers(feed.group), self.worker))
                continue
            total = 0
            for value in counts[feed.group].values():
                count, until = value.decode().split(":")
                if float(until) > now:
                    total += int(count)
            feed.viewers = total
            if announce and total != feed.announced:
                feed.announced = total
                feed.hand_out({"type": "chat.viewers", "count": total})
            elif not announce and total != feed.announced:
                # A newcomer's welcome says `total`, the others were told `announced`:
                # the next tick tells them all, even if the total is back to
                # `announced` by then (someone left meanwhile).
                feed.announced = None

    def viewers(self, group: str) -> int:
        feed = self.feeds.get(group)
        return feed.viewers if feed is not None else 0


_hubs: PerLoop[FeedHub] = PerLoop(FeedHub)


def feed_hub(layer: Any) -> FeedHub:
    """The running loop's hub for `layer` (a new one if the layer was replaced)."""
    return _hubs.get(layer)
