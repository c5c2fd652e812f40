"""What a room socket does for an audience: broadcast rooms and live comments.

- Broadcast rooms' messages come a tick at a time (chat/feeds.py): one
  `messages` frame carries the tick's messages, made once for every socket of
  the worker, whenever the socket can take them all in order.
- `viewers`: how many sockets watch a broadcast room, over every worker.
- `room.state`: a broadcast room's state (a score, a quote), newest version.
- Live comments (danmaku): `comment.send` in a room that takes them becomes a
  `comment` frame for everyone, never stored and outside the room's ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from chat import events, protocol
from chat.db import database_sync_to_async
from chat.delivery import Delivery
from chat.errors import ChatError
from chat.limits import rate_place
from chat.models import Room
from chat.services import author_may_write, body_clean
from chat.socket import InboxConsumer


def comment_clean(body: str) -> str:
    """A live comment: 1..CHAT_COMMENT_MAX code points once stripped."""
    return body_clean(body, limit=settings.CHAT_COMMENT_MAX, noun="comment")


class AudienceSocket(InboxConsumer):
    """A mixin of chat.consumers.RoomConsumer."""

    room: Room | None
    delivery: Delivery
    opened: bool

    async def chat_messages(self, event: dict[str, Any]) -> None:
        """A tick's messages of a broadcast room, in id order (chat/feeds.py)."""
        # The author sees their client_id: their own messages go one by one.
        if self.scope["user"].pk not in event["authors"] and await self.delivery.live_batch(
            first=event["first"], last=event["last"], text=event["text"]
        ):
            return
        for message in event["events"]:
            await self.chat_message(message)

    def take_batch(self, batch: dict[str, Any]) -> bool:
        """The feed's fast way: write the tick's frame now, prepared (chat/wire.py),
        from the feed's task.

        Only when nothing else is waiting for this socket (its inbox is empty
        and its order is not busy): the frame then goes exactly where the
        event would have.
        """
        wire = self.wire
        if (
            wire is None
            or self.inbox.messages
            or not self.opened
            or self.closing
            or self.scope["user"].pk in batch["authors"]
        ):
            return False
        text = batch["text"]
        return self.delivery.take_batch(
            first=batch["first"],
            last=batch["last"],
            write=lambda: text is None or wire.send_shared(text),
        )

    async def chat_state(self, event: dict[str, Any]) -> None:
        await self.send_text(event["text"])

    async def chat_viewers(self, event: dict[str, Any]) -> None:
        await self.send_text(events.viewers_frame(event["count"]))

    async def chat_comment(self, event: dict[str, Any]) -> None:
        await self.send_text(event["text"])

    async def comment(self, command: protocol.Comment) -> None:
        """A live comment: to everyone in the room now, and nowhere else ever."""
        assert self.room is not None
        if not self.room.live_comments:
            raise ChatError("forbidden", "this room takes no live comments")
        if self.room.archived:
            raise ChatError("room_archived", "this room is archived and read-only")
        body = comment_clean(command.body)
        user = self.scope["user"]
        async with rate_place(self.channel_layer, user_id=user.pk, what="comments") as place:
            await database_sync_to_async(author_may_write)(author_id=user.pk, room_id=self.room.pk)
            place.kept = True
        event = events.chat_comment(
            room_id=self.room.pk, username=user.get_username(), body=body, time=command.time
        )
        await asyncio.wait_for(
            self.channel_layer.group_send(self.room.group_name, event), settings.CHAT_LAYER_TIMEOUT
        )
