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

from collections.abc import Awaitable, Callable
from typing import Any

from chat import protocol
from chat.actions.live import comment_send
from chat.domain import events
from chat.models import Room
from chat.platform.wire import Wire
from chat.sockets.delivery import Delivery

Send = Callable[[str], Awaitable[None]]
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Audience:
    """A room socket's audience events and live comments, given the socket's I/O.

    `message` hands one `chat.message` event to the socket's order; `idle` says
    whether nothing else waits for the socket (it has opened, is not closing,
    and its inbox is empty).
    """

    def __init__(
        self,
        layer: Any,
        *,
        room: Room,
        user: Any,
        delivery: Delivery,
        send: Send,
        message: Handler,
        wire: Wire | None,
        idle: Callable[[], bool],
    ) -> None:
        self.layer = layer
        self.room = room
        self.user = user
        self.delivery = delivery
        self.send = send
        self.message = message
        self.wire = wire
        self.idle = idle

    async def messages(self, event: dict[str, Any]) -> None:
        """A tick's messages of a broadcast room, in id order (chat/sockets/feeds.py)."""
        # The author sees their client_id: their own messages go one by one.
        if self.user.pk not in event["authors"] and await self.delivery.live_batch(
            first=event["first"], last=event["last"], text=event["text"]
        ):
            return
        for message in event["events"]:
            await self.message(message)

    def take_batch(self, batch: dict[str, Any]) -> bool:
        """The feed's fast way: write the tick's frame now, prepared (chat/platform/wire.py),
        from the feed's task.

        Only when nothing else is waiting for this socket (its inbox is empty
        and its order is not busy): the frame then goes exactly where the
        event would have.
        """
        wire = self.wire
        if wire is None or not self.idle() or self.user.pk in batch["authors"]:
            return False
        return self.delivery.take_batch(
            first=batch["first"], last=batch["last"], text=batch["text"], write=wire.send_shared
        )

    async def state(self, event: dict[str, Any]) -> None:
        await self.send(event["text"])

    async def viewers(self, event: dict[str, Any]) -> None:
        await self.send(events.viewers_frame(event["count"]))

    async def comment_arrived(self, event: dict[str, Any]) -> None:
        await self.send(event["text"])

    async def comment(self, command: protocol.Comment) -> None:
        """A live comment: to everyone in the room now, and nowhere else ever."""
        await comment_send(
            self.layer,
            room=self.room,
            user=self.user,
            body=command.body,
            time=command.time,
        )
