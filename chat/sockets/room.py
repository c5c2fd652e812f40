"""The room socket: the thin async edge (docs/protocol-v1.md, The WebSocket).

Each client frame is parsed into a command (chat/protocol.py), handed to one
service call, and its result broadcast to the room's group. What the socket
is sent, and in what order, is chat/sockets/delivery.py's to decide: live messages,
holes filled from the database, acknowledgements, answers. The worker's
watcher (chat/sockets/watcher.py) closes the sockets a Redis restart deafened and
lets each catch up with its room's newest message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from chat import protocol
from chat.actions import live, messages, reactions, rooms
from chat.actions.outbox import deliver, run
from chat.domain import events
from chat.domain.access import room_for_user
from chat.domain.limits import rate_place
from chat.domain.presence import Joined, PresenceNews, socket_announce, socket_joins, socket_leaves
from chat.domain.services import (
    Snapshot,
    socket_snapshot,
)
from chat.errors import ChatError
from chat.models import SLUG_PATTERN, Message, Room, user_group_name
from chat.platform import outages
from chat.platform.db import database_sync_to_async
from chat.platform.layers import LAYER_ERRORS
from chat.platform.socket import InboxConsumer
from chat.protocol import CloseCode
from chat.sockets.audience import AudienceSocket
from chat.sockets.delivery import Delivery, Rendered
from chat.sockets.feeds import feed_hub
from chat.sockets.holes import messages_missing
from chat.sockets.moderation import ModeratedSocket
from chat.sockets.watcher import EpochWatch, epoch_watch_join

logger = logging.getLogger(__name__)

# Ten `rate_limited` answers in a row on one socket close it (docs/protocol-v1.md, 4429).
FLOOD_CLOSE_AFTER = 10
# What a viewer who is not signed in may ask of a socket.
READ_ONLY = (protocol.History, protocol.Ping)
_SLUG = re.compile(SLUG_PATTERN)


class RoomConsumer(AudienceSocket, ModeratedSocket, InboxConsumer):
    room: Room | None = None
    epoch_watch: EpochWatch | None = None
    rate_limited_in_a_row = 0
    # (room id, Redis member) while this socket counts as online.
    presence_entry: tuple[int, str] | None = None
    presence: PresenceNews
    typing_at = 0.0
    delivery: Delivery
    # Set once connect() has sent the welcome and the replay.
    opened = False

    def started(self) -> None:
        self.delivery = Delivery(
            send=self.send_text,
            read_between=self.read_between,
            give_up=self.hole_unread,
            schedule=lambda delay: self.inbox.later(delay, self.delivery.hole_expired),
            hole_wait=settings.CHAT_HOLE_WAIT,
        )

    def stopped(self) -> None:
        self.delivery.close()

    async def refuse(self, code: CloseCode) -> None:
        if self.epoch_watch is not None:
            # Refused after joining the watch: it must not close this socket again.
            self.epoch_watch.consumers.discard(self)
            self.epoch_watch = None
        await super().refuse(code)

    # --- connecting and leaving -----------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope["user"]
        code = self.scope.get("auth_close_code")
        # Someone not signed in may still watch a broadcast room open to viewers.
        if code and not (code == CloseCode.UNAUTHENTICATED and not user.is_authenticated):
            return await self.refuse(code)
        try:
            after = protocol.resume_after(self.scope.get("query_string", b""))
        except ValueError:
            return await self.refuse(CloseCode.BAD_QUERY)
        slug = self.scope["url_route"]["kwargs"]["slug"]
        # No room has such a slug. Checked before the query: a NUL in it would
        # make PostgreSQL fail (DataError), answered 4013 "try again", not 4404.
        if not _SLUG.fullmatch(slug):
            return await self.refuse(CloseCode.NOT_FOUND)
        try:
            room = await database_sync_to_async(room_for_user)(user=user, slug=slug)
            snapshot, joined = await self.enter(room, user, after)
        except ChatError as error:
            # No such room (4404), deactivated since the handshake (4403), or
            # not signed in for a room that is not open to viewers (4401).
            if not user.is_authenticated:
                return await self.refuse(CloseCode.UNAUTHENTICATED)
            return await self.refuse(error.close_code or CloseCode.NOT_FOUND)
        except (*LAYER_ERRORS, DatabaseError) as error:
            return await self.refuse_unavailable(error)
        outages.DATABASE.served()
        if self.epoch_watch is None:
            # The watch saw Redis restart while this socket was joining.
            return await self.refuse(CloseCode.SERVICE_RESTART)
        await self.accept()
        await self.send_text(
            events.welcome_frame(
                room=snapshot.room or room,
                username=user.get_username() if user.is_authenticated else None,
                online=joined.online,
                last_id=snapshot.last_number or None,
                viewers=feed_hub(self.channel_layer).viewers(room.group_name),
                mute=snapshot.mute,
            )
        )
        if snapshot.gap is not None:
            await self.send_text(events.gap_frame(after=snapshot.gap[0], before=snapshot.gap[1]))
        replay = [self.rendered(message) for message in snapshot.messages]
        await self.delivery.start(replay=replay, last_number=snapshot.last_number)
        self.opened = True
        await socket_announce(
            self.channel_layer, room=room, user=user, joined=joined, channel_name=self.channel_name
        )
        if self.epoch_watch is None:
            # Redis restarted during the welcome or the replay.
            await self.close(code=CloseCode.SERVICE_RESTART)

    async def enter(self, room: Room, user: Any, after: int | None) -> tuple[Snapshot, Joined]:
        """Join the watch, the groups and presence, then read the backlog.

        The watch comes before the groups: a Redis restart after its look
        closes this socket (4012); one before it is already the Redis that
        group_add reaches. The groups come before the backlog: whatever is
        committed after the read arrives live, and anything in both is
        dropped by id. The user's group comes before the account is read again.
        """
        self.epoch_watch = await epoch_watch_join(self.channel_layer, self)
        broadcast = room.kind == Room.Kind.BROADCAST
        groups = [room.group_name]
        if user.is_authenticated:
            groups.insert(0, user_group_name(user.pk))
        await self.join(*groups, batched=broadcast)
        self.room = room
        snapshot = await database_sync_to_async(socket_snapshot)(
            user_id=user.pk, room_id=room.pk, after=after
        )
        if broadcast:
            # A viewer count, not who is online: count this socket in at once.
            await feed_hub(self.channel_layer).count_viewers([room.group_name], announce=False)
            return snapshot, Joined(came_online=False, online=[], ghosts=[], version=0)
        member, joined = await socket_joins(
            self.channel_layer, room=room, user=user, channel_name=self.channel_name
        )
        self.presence_entry = (room.pk, member)
        self.presence = PresenceNews(joined.version)
        return snapshot, joined

    async def disconnect(self, code: int) -> None:
        if self.epoch_watch is not None:
            self.epoch_watch.consumers.discard(self)
        if self.presence_entry is not None and self.room is not None:
            member, self.presence_entry = self.presence_entry[1], None
            await socket_leaves(
                self.channel_layer, room=self.room, user=self.scope["user"], member=member
            )
        await self.leave_groups()

    # --- client frames --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if protocol.too_big(text_data, bytes_data, limit=settings.CHAT_FRAME_MAX_BYTES):
            return await self.close(code=CloseCode.TOO_BIG)
        # The JSON value, kept apart from the command: an error answers with
        # its client_id even when the frame is not a valid command.
        value: object = None
        try:
            if text_data is None:
                raise ChatError("bad_request", "binary frames are not accepted")
            value = protocol.decode(text_data)
            command = protocol.command(value)
            if not self.scope["user"].is_authenticated and not isinstance(command, READ_ONLY):
                raise ChatError("forbidden", "sign in to take part: viewers only watch")
            await self.handlers[type(command)](self, command)
        except ChatError as error:
            await self.refused(error, client_id=protocol.echoed_client_id(value))
        except (DatabaseError, *LAYER_ERRORS) as error:
            outage = outages.DATABASE if isinstance(error, DatabaseError) else outages.CHANNEL_LAYER
            outage.refused(error)
            unavailable = ChatError("unavailable", "try again shortly")
            await self.refused(unavailable, client_id=protocol.echoed_client_id(value))

    async def refused(self, error: ChatError, *, client_id: str | None) -> None:
        """Answer a refused frame, after the acknowledgements this socket is owed."""
        if error.close_code is not None:
            return await self.close(code=error.close_code)
        await self.delivery.answer(
            events.error_frame(
                error.code, error.detail, client_id=client_id, retry_after=error.retry_after
            )
        )
        if self.rate_limited_in_a_row >= FLOOD_CLOSE_AFTER:
            await self.delivery.settle()  # every acknowledgement goes before the close
            await self.close(code=CloseCode.FLOODING)

    async def send_message(self, command: protocol.SendMessage) -> None:
        assert self.room is not None
        try:
            sent, outbox = await messages.message_send_async(
                room=self.room,
                author=self.scope["user"],
                body=command.body,
                client_id=command.client_id,
                reply_to=command.reply_to,
                attachments=list(command.attachments),
            )
        except ChatError as error:
            if error.code == "rate_limited":
                self.rate_limited_in_a_row += 1  # refused() closes with 4429 at ten
            raise
        self.rate_limited_in_a_row = 0
        if not sent.created:
            return await self.delivery.resent(sent.number, sent.acknowledgement)
        await self.delivery.stored(sent.number, sent.acknowledgement)
        try:
            await deliver(self.channel_layer, outbox)
        except LAYER_ERRORS:
            # Stored and acknowledged: the others catch up by the tail check or on resume.
            logger.warning("broadcast of message %d failed", sent.number, exc_info=True)

    async def typing(self, command: protocol.Typing) -> None:
        assert self.room is not None
        now = time.monotonic()
        if now - self.typing_at < live.TYPING_INTERVAL:
            return  # the user's other sockets share the limit; this saves a round trip
        self.typing_at = now
        await live.typing_tell(self.channel_layer, room=self.room, user=self.scope["user"])

    async def history(self, command: protocol.History) -> None:
        assert self.room is not None
        page = await database_sync_to_async(Message.objects.history)(
            room_id=self.room.pk,
            limit=command.limit,
            before=command.before,
            after=command.after,
            around=command.around,
        )
        await self.delivery.answer(events.history_frame(page, user_id=self.scope["user"].pk))

    async def edit_message(self, command: protocol.EditMessage) -> None:
        assert self.room is not None
        _, outbox = await run(
            messages.message_edit,
            room_id=self.room.pk,
            number=command.id,
            user=self.scope["user"],
            body=command.body,
        )
        await deliver(self.channel_layer, outbox)

    async def delete_message(self, command: protocol.DeleteMessage) -> None:
        assert self.room is not None
        _, outbox = await run(
            messages.message_delete,
            room_id=self.room.pk,
            number=command.id,
            user=self.scope["user"],
        )
        await deliver(self.channel_layer, outbox)

    async def react(self, command: protocol.React) -> None:
        assert self.room is not None
        user = self.scope["user"]
        async with rate_place(self.channel_layer, user_id=user.pk, what="reactions") as place:
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
        await deliver(self.channel_layer, outbox)

    async def read(self, command: protocol.Read) -> None:
        assert self.room is not None
        _, outbox = await run(
            rooms.room_read, room=self.room, user=self.scope["user"], number=command.id
        )
        await deliver(self.channel_layer, outbox)

    async def ping(self, command: protocol.Ping) -> None:
        await self.delivery.answer('{"type":"pong"}')

    handlers: dict[type[Any], Callable[[RoomConsumer, Any], Awaitable[None]]] = {
        protocol.SendMessage: send_message,
        protocol.Typing: typing,
        protocol.History: history,
        protocol.EditMessage: edit_message,
        protocol.DeleteMessage: delete_message,
        protocol.Read: read,
        protocol.Ping: ping,
        protocol.React: react,
        protocol.Comment: AudienceSocket.comment,
    }

    # --- delivery's I/O -------------------------------------------------------------------

    def rendered(self, message: Message) -> Rendered:
        """A stored message as this socket's user sees it."""
        mine = message.author_id == self.scope["user"].pk
        return message.number, events.message_frame(message, for_author=mine)

    async def read_between(self, after: int, before: int) -> list[Rendered] | None:
        """The stored messages of a hole; None when the database fails."""
        assert self.room is not None
        try:
            missing = await messages_missing(room_id=self.room.pk, after=after, before=before)
        except DatabaseError as error:
            outages.DATABASE.refused(error)
            return None
        return [self.rendered(message) for message in missing]

    async def hole_unread(self) -> None:
        """A hole could not be read: better a resume than a hole (the client comes back
        with after=)."""
        await self.close(code=CloseCode.TRY_AGAIN_LATER)

    def watched_rooms(self) -> list[int]:
        return [self.room.pk] if self.opened and self.room is not None else []

    async def catch_up(self, last_numbers: dict[int, int]) -> None:
        """The watcher's tail check: send what the room has beyond the last message sent."""
        if self.opened and not self.closing and self.room is not None:
            await self.delivery.catch_up(last_numbers.get(self.room.pk, 0))

    # --- group events (no database, no serialising) ---------------------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        mine = event["author_id"] == self.scope["user"].pk
        await self.delivery.live(event["id"], event["author_text"] if mine else event["text"])

    async def chat_message_edited(self, event: dict[str, Any]) -> None:
        # Held messages go first, as stored now: a client knows a message before its change.
        await self.delivery.settle()
        await self.send_text(event["text"])

    async def chat_message_deleted(self, event: dict[str, Any]) -> None:
        await self.delivery.settle()
        await self.send_text(event["text"])

    async def chat_presence(self, event: dict[str, Any]) -> None:
        if event["channel"] == self.channel_name:
            return
        joined, left = self.presence.fresh(
            version=event["version"], joined=event["joined"], left=event["left"]
        )
        if joined == event["joined"] and left == event["left"]:
            await self.send_text(event["text"])
        elif joined or left:
            await self.send_text(events.presence_text(joined=joined, left=left))

    async def chat_reactions(self, event: dict[str, Any]) -> None:
        await self.send_text(event["text"])

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event["user_id"] != self.scope["user"].pk:
            await self.send_text(event["text"])

    async def layer_restarted(self) -> None:
        """The layer may have lost this socket's group: the client must resume."""
        if self.epoch_watch is not None:
            self.epoch_watch.consumers.discard(self)
            self.epoch_watch = None
            # The watch calls this from its own task, also while connect() is
            # running: a close before the accept would be a refused handshake,
            # one amid the replay would cut it. connect() closes when done.
            if self.opened:
                await self.close(code=CloseCode.SERVICE_RESTART)
