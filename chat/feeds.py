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

Broadcast rooms batch (`CHAT_BATCH_TICK`): the `chat.message` events that
arrive within one tick go to each socket as one `chat.messages` event, so
that a socket is written once per tick rather than once per message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, Protocol

from django.conf import settings

from chat.layers import LAYER_LOST, Inbox

logger = logging.getLogger(__name__)


class Member(Protocol):
    """What a feed needs of a socket: the inbox it reads its events from."""

    inbox: Inbox


class Feed:
    """One worker's membership of one room's group, shared by its sockets there."""

    def __init__(self, hub: FeedHub, group: str, *, batched: bool) -> None:
        self.hub = hub
        self.group = group
        self.batched = batched
        self.channel = ""
        self.members: set[Any] = set()
        # Sockets watching the room on every worker, as last counted (broadcast rooms).
        self.viewers = 0
        self.task: asyncio.Task[None] | None = None
        # chat.message events waiting for the end of the tick (batched feeds).
        self.pending: list[dict[str, Any]] = []
        self.flush: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        layer = self.hub.layer
        self.channel = await layer.new_channel()
        self.task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.flush is not None:
            self.flush.cancel()
        self.hub.layer.discard_inbox(self.channel)

    async def run(self) -> None:
        inbox = self.hub.layer.inbox(self.channel)
        while True:
            message = await inbox.get()
            if message is LAYER_LOST:
                continue  # every socket of the worker hears of it in its own inbox
            if self.batched and message["type"] == "chat.message":
                self.pending.append(message)
                if self.flush is None:
                    self.flush = asyncio.get_running_loop().call_later(
                        settings.CHAT_BATCH_TICK, self.send_batch
                    )
                continue
            if self.pending:
                self.send_batch()  # what came before goes first
            self.hand_out(message)

    def send_batch(self) -> None:
        """The tick is over: one event with every message that came in it.

        Its `text` is the one `messages` frame of them all, made once for every
        socket, when their ids follow on without a gap (None otherwise: each
        socket then takes them one by one).
        """
        if self.flush is not None:
            self.flush.cancel()
            self.flush = None
        batch, self.pending = sorted(self.pending, key=lambda event: event["id"]), []
        if not batch:
            return
        ids = [event["id"] for event in batch]
        text = None
        if ids == list(range(ids[0], ids[0] + len(ids))):
            text = '{"type":"messages","messages":[' + ",".join(e["text"] for e in batch) + "]}"
        self.hand_out(
            {
                "type": "chat.messages",
                "events": batch,
                "first": ids[0],
                "last": ids[-1],
                "text": text,
            }
        )

    def hand_out(self, message: dict[str, Any]) -> None:
        capacity = self.hub.layer.capacity
        for member in list(self.members):
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
        """Have `member` get the group's events; the group holds the feed once this returns."""
        async with self.locks.setdefault(group, asyncio.Lock()):
            feed = self.feeds.get(group)
            if feed is None:
                feed = Feed(self, group, batched=batched)
                await feed.start()
                self.feeds[group] = feed
            try:
                await asyncio.wait_for(
                    self.layer.group_add(group, feed.channel), settings.CHAT_LAYER_TIMEOUT
                )
            except BaseException:
                if not feed.members:
                    del self.feeds[group]
                    feed.stop()
                raise
            feed.members.add(member)

    async def leave(self, group: str, member: Member) -> None:
        """`member` is gone; the last one out takes the feed out of the group."""
        async with self.locks.setdefault(group, asyncio.Lock()):
            feed = self.feeds.get(group)
            if feed is None or member not in feed.members:
                return
            feed.members.discard(member)
            if feed.members:
                return
            del self.feeds[group]
            feed.stop()
            # The group entry expires with the layer's group_expiry if this fails.
            await asyncio.wait_for(
                self.layer.group_discard(group, feed.channel), settings.CHAT_LAYER_TIMEOUT
            )
            if feed.batched:
                await self.layer.connection(0).hdel(self.viewers_key(group), self.worker)

    def members(self, group: str) -> int:
        """How many sockets of this worker are in the group."""
        feed = self.feeds.get(group)
        return len(feed.members) if feed is not None else 0

    # --- viewers of broadcast rooms, over every worker --------------------------------------

    @property
    def worker(self) -> str:
        return str(self.layer.client_prefix)

    def viewers_key(self, group: str) -> str:
        # A hash of worker -> "<its sockets in the room>:<until when that holds>".
        return f"{self.layer.prefix}:viewers:{group}"

    async def count_viewers(self, groups: list[str] | None = None) -> None:
        """Tell Redis how many sockets this worker has in each broadcast room, and read
        the totals: a total that changed goes to the worker's sockets as `viewers`.

        Every CHAT_LAYER_CHECK_INTERVAL (chat/watcher.py), and when a socket joins.
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
        pipe = self.layer.connection(0).pipeline(transaction=False)
        for feed in feeds:
            key = self.viewers_key(feed.group)
            pipe.hset(key, self.worker, f"{len(feed.members)}:{now + ttl}")
            pipe.expire(key, int(ttl * 2))
            pipe.hgetall(key)
        replies = await asyncio.wait_for(pipe.execute(), settings.CHAT_LAYER_TIMEOUT)
        for index, feed in enumerate(feeds):
            total = 0
            for value in replies[3 * index + 2].values():
                count, until = value.decode().split(":")
                if float(until) > now:
                    total += int(count)
            if total != feed.viewers:
                feed.viewers = total
                feed.hand_out({"type": "chat.viewers", "count": total})

    def viewers(self, group: str) -> int:
        feed = self.feeds.get(group)
        return feed.viewers if feed is not None else 0


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FeedHub] = weakref.WeakKeyDictionary()


def feed_hub(layer: Any) -> FeedHub:
    """The running loop's hub for `layer` (a new one if the layer was replaced)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = FeedHub(layer)
    return hub
