"""Every signed-in page's own socket, /ws/me/: what the reader has yet to read, live.

On every (re)connect it sends `rooms`, a snapshot of every room the user can
see: unread and mention counts, notification setting, who is online. Then it
sends changes: `room` (one room's entry, whole), `room.removed`, and `notify`
for a message the reader asked to be told of (docs/protocol.md, The page's
own socket).

It listens to the group of every room the user can read, to its user group
and to the group of new rooms. A new message is counted as its broadcast
arrives, with no database read, in each room's order (a `Sequence`,
chat/sockets/sequence.py): one that arrives ahead of a missing one waits for
it (CHAT_HOLE_WAIT), then the missing ones are read and counted. A read, a
change of mentions, a deleted message it cannot place, or a hole it could not
read reads that room's counts again, so that they stay exact across workers
and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError

from chat.domain import events, payloads
from chat.domain.attention import RoomEntry, room_entries, room_entry
from chat.domain.presence import PresenceNews, online_from_members
from chat.models import Notify, Room
from chat.platform.db import database_sync_to_async
from chat.platform.groups import ROOMS_GROUP, me_group_name, room_group_name, user_group_name
from chat.platform.layers import LAYER_ERRORS
from chat.platform.redis import keys, pools
from chat.platform.redis.routing import room_shard
from chat.protocol import CloseCode
from chat.sockets.base import Socket
from chat.sockets.holes import messages_missing
from chat.sockets.sequence import Sequence

logger = logging.getLogger(__name__)


@dataclass
class Counted:
    """One room as this socket counts it."""

    entry: RoomEntry
    unread: int
    mentions: int
    # The newest message counted (`last`): later ones are counted as they arrive, in order.
    order: Sequence[dict[str, Any]]
    online: set[str]
    presence: PresenceNews

    @property
    def last_id(self) -> int:
        return self.order.last

    def payload(self) -> dict[str, Any]:
        counted = replace(self.entry, unread=self.unread, mentions=self.mentions)
        return payloads.room_entry_payload(counted, online=len(self.online))


class MeConsumer(Socket):
    # What the rooms' own sockets show, and which changes no count.
    ignores = frozenset(
        {
            "chat.typing",
            "chat.state",
            "chat.viewers",
            "chat.mute_changed",
            "chat.comment",
            "chat.reactions",
        }
    )

    def started(self) -> None:
        super().started()
        self.rooms: dict[int, Counted] = {}

    @property
    def user(self) -> User:
        return self.scope["user"]

    async def connect(self) -> None:
        if self.scope.get("auth_close_code"):
            return await self.refuse(self.scope["auth_close_code"])
        try:
            await self.lifecycle.join(self.channel_layer)
            await self.join(user_group_name(self.user.pk), me_group_name(self.user.pk), ROOMS_GROUP)
            # The rooms' groups before their counts: a message after the read
            # arrives live; one in both is counted once, by its id.
            rooms = await database_sync_to_async(self.visible_rooms)()
            for room_id, kind in rooms:
                await self.join(room_group_name(room_id), batched=kind == Room.Kind.BROADCAST)
            room_ids = [room_id for room_id, _ in rooms]
            entries = await database_sync_to_async(room_entries)(self.user, room_ids=room_ids)
            await self.count(entries)
        except (*LAYER_ERRORS, DatabaseError) as error:
            return await self.refuse_unavailable(error)
        if self.lifecycle.restarted:
            return await self.refuse(CloseCode.SERVICE_RESTART)
        await self.accept()
        rooms = [counted.payload() for counted in self.rooms.values()]
        await self.send_text(events.dumps({"type": "rooms", "rooms": rooms}))
        await self.lifecycle.open()

    def visible_rooms(self) -> list[tuple[int, str]]:
        """(id, kind) of every room the user can see."""
        return list(Room.objects.visible_to(self.user).values_list("pk", "kind"))

    async def count(self, entries: list[RoomEntry]) -> None:
        """Start counting these rooms, with who is online in each (read after the groups)."""
        layer = self.channel_layer
        by_shard: dict[int, list[RoomEntry]] = {}
        for entry in entries:
            by_shard.setdefault(room_shard(entry.room.pk, layer.ring_size), []).append(entry)
        now = time.time()

        async def read(shard: int, entries: list[RoomEntry]) -> list[Any]:
            # One transaction: the entries and the version they are at, with no
            # join or leave between the two reads (a leave between them would
            # be older than the version read, and never heard of).
            pipe = layer.connection(shard).pipeline(transaction=True)
            for entry in entries:
                pipe.zrangebyscore(keys.presence(entry.room.pk), now, "+inf")
                pipe.get(keys.presence_version(entry.room.pk))
            return list(await pipe.execute())

        # Each shard's rooms in one round trip, the shards at once.
        shards = list(by_shard.items())
        answers = await pools.bounded(
            asyncio.gather(*(read(shard, entries) for shard, entries in shards))
        )
        replies: dict[int, tuple[Any, Any]] = {}
        for (_, entries_of_shard), answer in zip(shards, answers, strict=True):
            for index, entry in enumerate(entries_of_shard):
                replies[entry.room.pk] = (answer[2 * index], answer[2 * index + 1])
        for entry in entries:
            members, version = replies[entry.room.pk]
            self.rooms[entry.room.pk] = Counted(
                entry=entry,
                unread=entry.unread,
                mentions=entry.mentions,
                order=self.order(entry.room.pk, last=entry.last_id),
                online=set(online_from_members(members)),
                presence=PresenceNews(int(version or 0)),
            )

    async def disconnect(self, code: int) -> None:
        self.lifecycle.leave()
        await self.leave_groups()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == '{"type":"ping"}':
            await self.send_text('{"type":"pong"}')
        # Nothing else is asked of this socket: a client frame changes nothing.

    async def tell(self, counted: Counted) -> None:
        await self.send_text(events.dumps({"type": "room", "room": counted.payload()}))

    async def recount(self, room_id: int) -> None:
        """Read one room's counts again: added, updated, or gone for this reader."""
        entry = await database_sync_to_async(room_entry)(self.user, room_id)
        counted = self.rooms.get(room_id)
        if entry is None:
            if counted is not None:
                del self.rooms[room_id]
                counted.order.close()
                await self.leave(counted.entry.room.group_name)
                slug = counted.entry.room.slug
                await self.send_text(events.dumps({"type": "room.removed", "slug": slug}))
            return
        if counted is None:
            await self.join(entry.room.group_name, batched=entry.room.kind == Room.Kind.BROADCAST)
            entry = await database_sync_to_async(room_entry)(self.user, room_id) or entry
            await self.count([entry])
        else:
            counted.entry, counted.unread, counted.mentions = entry, entry.unread, entry.mentions
            counted.order.close()
            counted.order = self.order(room_id, last=entry.last_id)
        await self.tell(self.rooms[room_id])

    def order(self, room_id: int, *, last: int) -> Sequence[dict[str, Any]]:
        """A room's messages after `last`, counted in order: a hole waits, then is read."""
        sequence: Sequence[dict[str, Any]] = Sequence(
            pass_on=lambda first, through, run: self.counted_in(room_id, run),
            read_between=lambda after, before: self.read_missing(room_id, after, before),
            schedule=lambda delay: self.inbox.later(delay, sequence.hole_expired),
            give_up=lambda held: self.recount(room_id),
            hole_wait=settings.CHAT_HOLE_WAIT,
            last=last,
        )
        return sequence

    async def read_missing(
        self, room_id: int, after: int, before: int
    ) -> list[tuple[int, dict[str, Any]]] | None:
        """The messages of a hole, as their broadcasts would have brought them."""
        try:
            missing = await messages_missing(room_id=room_id, after=after, before=before)
        except DatabaseError as error:
            logger.warning("could not read a hole of room %d: %r", room_id, error)
            return None  # the room's counts are read again instead
        return [(message.number, events.chat_message(message)) for message in missing]

    async def counted_in(self, room_id: int, run: list[tuple[int, dict[str, Any]]]) -> None:
        """A run of the room's messages, next in its order: counted, told once, notified."""
        counted = self.rooms.get(room_id)
        if counted is None:
            return
        notices = [self.count_message(counted, event) for _, event in run]
        if any(notice is not None for notice in notices):
            await self.tell(counted)
        for notice in notices:
            if notice:
                await self.send_text(notice)

    # --- group events ---------------------------------------------------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        counted = self.rooms.get(event["room_id"])
        if counted is not None:
            await counted.order.arrived((event["id"], event))

    def count_message(self, counted: Counted, event: dict[str, Any]) -> str | None:
        """Count one message: None if it is the reader's own, else its `notify` frame, or ""
        if the reader is not to be told of it."""
        number = event["id"]
        if event["author_id"] == self.user.pk:
            return None
        mentioned = self.user.pk in event["mention_ids"]
        counted.unread += 1
        counted.mentions += mentioned
        notify = counted.entry.notify
        if notify == Notify.ALL or (notify == Notify.MENTIONS and mentioned):
            frame = {
                "type": "notify",
                "room": counted.entry.room.slug,
                "title": counted.entry.title,
                "kind": counted.entry.room.kind,
                "id": number,
                "user": event["username"],
                "body": event["snippet"],
                "mention": mentioned,
            }
            return events.dumps(frame)
        return ""

    async def chat_message_deleted(self, event: dict[str, Any]) -> None:
        counted = self.rooms.get(event["room_id"])
        if counted is None:
            return
        number = event["id"]
        if number > counted.last_id:
            return await self.recount(event["room_id"])  # deleted before it reached us
        if event["author_id"] != self.user.pk and number > counted.entry.last_read:
            counted.unread -= 1
            counted.mentions -= self.user.pk in event["mention_ids"]
            await self.tell(counted)

    async def chat_message_edited(self, event: dict[str, Any]) -> None:
        if event["room_id"] in self.rooms and self.user.pk in event["mentions_changed"]:
            await self.recount(event["room_id"])

    async def chat_attention(self, event: dict[str, Any]) -> None:
        await self.recount(event["room_id"])

    async def chat_presence(self, event: dict[str, Any]) -> None:
        counted = self.rooms.get(event["room_id"])
        if counted is None:
            return
        joined, left = counted.presence.fresh(
            version=event["version"], joined=event["joined"], left=event["left"]
        )
        before = len(counted.online)
        counted.online |= set(joined)
        counted.online -= set(left)
        if len(counted.online) != before:
            await self.tell(counted)

    async def chat_room_changed(self, event: dict[str, Any]) -> None:
        await self.recount(event["room_id"])  # renamed, archived, or no longer visible

    async def chat_access_lost(self, event: dict[str, Any]) -> None:
        if self.user.pk in event["user_ids"]:
            await self.recount(event["room_id"])

    async def chat_messages(self, event: dict[str, Any]) -> None:
        """A broadcast room's tick of messages: counted one by one."""
        for message in event["events"]:
            await self.chat_message(message)

    # --- the watcher's ---------------------------------------------------------------------

    def watched_rooms(self) -> list[int]:
        return list(self.rooms) if self.opened else []

    async def catch_up(self, last_numbers: dict[int, int]) -> None:
        """The tail check: a room whose newest message never arrived is counted again."""
        if not self.opened or self.closing:
            return
        for room_id, counted in list(self.rooms.items()):
            if last_numbers.get(room_id, 0) > counted.last_id:
                await self.recount(room_id)
