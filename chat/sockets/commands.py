"""What a room socket's client asks of its room: each command, one service call.

The answers go through the socket's order (chat/sockets/delivery.py): an
acknowledgement after the acknowledgements before it, a page of history
after the messages already sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chat import protocol
from chat.actions import live, messages, reactions, rooms
from chat.actions.outbox import deliver, run
from chat.domain import events
from chat.domain.limits import rate_place
from chat.errors import ChatError
from chat.models import Message, Room
from chat.platform.db import database_sync_to_async
from chat.platform.layers import LAYER_ERRORS
from chat.sockets.delivery import Delivery

logger = logging.getLogger(__name__)


class Commands:
    """A room socket's commands, given its layer, room, user and order."""

    def __init__(self, layer: Any, *, room: Room, user: Any, delivery: Delivery) -> None:
        self.layer = layer
        self.room = room
        self.user = user
        self.delivery = delivery
        # `rate_limited` answers in a row (chat/sockets/room.py closes at FLOOD_CLOSE_AFTER).
        self.rate_limited_in_a_row = 0
        self.typing_at = 0.0

    async def send_message(self, command: protocol.SendMessage) -> None:
        try:
            sent, outbox = await messages.message_send_async(
                room=self.room,
                author=self.user,
                body=command.body,
                client_id=command.client_id,
                reply_to=command.reply_to,
                attachments=list(command.attachments),
            )
        except ChatError as error:
            if error.code == "rate_limited":
                self.rate_limited_in_a_row += 1  # the socket closes with 4429 at ten
            raise
        self.rate_limited_in_a_row = 0
        if not sent.created:
            return await self.delivery.resent(sent.number, sent.acknowledgement)
        await self.delivery.stored(sent.number, sent.acknowledgement)
        try:
            await deliver(self.layer, outbox)
        except LAYER_ERRORS:
            # Stored and acknowledged: the others catch up by the tail check or on resume.
            logger.warning("broadcast of message %d failed", sent.number, exc_info=True)

    async def typing(self, command: protocol.Typing) -> None:
        now = time.monotonic()
        if now - self.typing_at < live.TYPING_INTERVAL:
            return  # the user's other sockets share the limit; this saves a round trip
        self.typing_at = now
        await live.typing_tell(self.layer, room=self.room, user=self.user)

    async def history(self, command: protocol.History) -> None:
        page = await database_sync_to_async(Message.objects.history)(
            room_id=self.room.pk,
            limit=command.limit,
            before=command.before,
            after=command.after,
            around=command.around,
        )
        await self.delivery.answer(events.history_frame(page, user_id=self.user.pk))

    async def edit_message(self, command: protocol.EditMessage) -> None:
        _, outbox = await run(
            messages.message_edit,
            room_id=self.room.pk,
            number=command.id,
            user=self.user,
            body=command.body,
        )
        await deliver(self.layer, outbox)

    async def delete_message(self, command: protocol.DeleteMessage) -> None:
        _, outbox = await run(
            messages.message_delete,
            room_id=self.room.pk,
            number=command.id,
            user=self.user,
        )
        await deliver(self.layer, outbox)

    async def react(self, command: protocol.React) -> None:
        user = self.user
        async with rate_place(self.layer, user_id=user.pk, what="reactions") as place:
            result, outbox = await run(
                reactions.reaction_set,
                room_id=self.room.pk,
                number=command.id,
                user=user,
                emoji=command.emoji,
                present=command.present,
            )
            place.kept = result.changed
        if not result.changed:
            # Nothing to tell the room: this socket alone learns how things stand.
            return await self.delivery.answer(
                events.reactions_frame(result.message, result.reactions, version=result.version)
            )
        await deliver(self.layer, outbox)

    async def read(self, command: protocol.Read) -> None:
        _, outbox = await run(rooms.room_read, room=self.room, user=self.user, number=command.id)
        await deliver(self.layer, outbox)
