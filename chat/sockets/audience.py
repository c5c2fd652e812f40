"""What a room socket does for an audience: broadcast rooms and live comments.

- Broadcast rooms' messages come a tick at a time (chat/sockets/feeds.py): one
  `messages` frame carries the tick's messages, made once for every socket of
  the worker, whenever the socket can take them all in order.
- `viewers`: how many sockets watch a broadcast room, over every worker.
- `room.state`: a broadcast room's state (a score, a quote), newest version.
- Live comments (danmaku): `comment.send` in a room that takes them becomes a
  `comment` frame for everyone, never stored and outside the room's ids.
"""

from __future__ import annotations

from typing import Any

from chat import protocol
from chat.actions.live import comment_send
from chat.domain import events
from chat.models import Room
from chat.platform.socket import InboxConsumer
from chat.sockets.delivery import Delivery


class AudienceSocket(InboxConsumer):
    """A mixin of chat.sockets.room.RoomConsumer."""

    room: Room | None
    delivery: Delivery
    opened: bool
    # A viewer of the room, counted in `viewers` (a page's /ws/me/ socket is not).
    watches = True

    async def chat_messages(self, event: dict[str, Any]) -> None:
        """A tick's messages of a broadcast room, in id order (chat/sockets/feeds.py)."""
        # The author sees their client_id: their own messages go one by one.
        if self.scope["user"].pk not in event["authors"] and await self.delivery.live_batch(
            first=event["first"], last=event["last"], text=event["text"]
        ):
            return
        for message in event["events"]:
            await self.chat_message(message)

    def take_batch(self, batch: dict[str, Any]) -> bool:
        """The feed's fast way: write the tick's frame now, prepared (chat/platform/wire.py),
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
        return self.delivery.take_batch(
            first=batch["first"], last=batch["last"], text=batch["text"], write=wire.send_shared
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
        await comment_send(
            self.channel_layer,
            room=self.room,
            user=self.scope["user"],
            body=command.body,
            time=command.time,
        )
