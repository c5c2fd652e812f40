"""The room socket: the thin async edge (docs/protocol-v1.md, The WebSocket).

Each client frame is parsed into a command (chat/protocol.py), handed to one
service call, and its result broadcast to the room's group. What the socket
is sent, and in what order, is chat/sockets/delivery.py's to decide: live messages,
holes filled from the database, acknowledgements, answers. The worker's
watcher (chat/sockets/watcher.py) closes the sockets a Redis restart deafened and
lets each catch up with its room's newest message.

The socket owns the rest, each a small class given what it needs of it:
the commands (chat/sockets/commands.py), the audience of a broadcast room
and its live comments (chat/sockets/audience.py), moderation
(chat/sockets/moderation.py) and presence (chat/sockets/presence.py). Its
event handlers hand each event to the one it concerns.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from chat import protocol
from chat.domain import events
from chat.domain.access import room_for_user
from chat.domain.presence import Joined
from chat.domain.snapshots import Snapshot, socket_snapshot
from chat.errors import ChatError
from chat.models import SLUG_PATTERN, Message, Room
from chat.platform import outages
from chat.platform.db import database_sync_to_async
from chat.platform.groups import user_group_name
from chat.platform.layers import LAYER_ERRORS
from chat.protocol import CloseCode
from chat.sockets.audience import Audience
from chat.sockets.base import Socket
from chat.sockets.commands import Commands
from chat.sockets.delivery import Delivery, Rendered
from chat.sockets.feeds import feed_hub
from chat.sockets.holes import messages_missing
from chat.sockets.moderation import Moderation
from chat.sockets.presence import Presence

logger = logging.getLogger(__name__)

# Ten `rate_limited` answers in a row on one socket close it (docs/protocol-v1.md, 4429).
FLOOD_CLOSE_AFTER = 10
# What a viewer who is not signed in may ask of a socket.
READ_ONLY = (protocol.History, protocol.Ping)
_SLUG = re.compile(SLUG_PATTERN)


class RoomConsumer(Socket):
    # A viewer of the room, counted in `viewers` (a page's /ws/me/ socket is not).
    watches = True
    room: Room | None = None
    delivery: Delivery
    # Made once the room is known (enter), before any of its events can arrive.
    audience: Audience
    commands: Commands
    moderation: Moderation
    presence: Presence | None = None

    def started(self) -> None:
        super().started()
        self.delivery = Delivery(
            send=self.send_text,
            read_between=self.read_between,
            give_up=self.hole_unread,
            schedule=lambda delay: self.inbox.later(delay, self.delivery.hole_expired),
            hole_wait=settings.CHAT_HOLE_WAIT,
        )

    def stopped(self) -> None:
        self.delivery.close()

    @property
    def presence_entry(self) -> tuple[int, str] | None:
        return self.presence.entry if self.presence is not None else None

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
        if self.lifecycle.restarted:
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
        assert self.presence is not None
        await self.presence.announce(joined)
        # Closes at once if Redis restarted during the welcome or the replay.
        await self.lifecycle.open()

    async def enter(self, room: Room, user: Any, after: int | None) -> tuple[Snapshot, Joined]:
        """Join the watch, the groups and presence, then read the backlog.

        The watch comes before the groups: a Redis restart after its look
        closes this socket (4012); one before it is already the Redis that
        group_add reaches. The groups come before the backlog: whatever is
        committed after the read arrives live, and anything in both is
        dropped by id. The user's group comes before the account is read again.
        """
        await self.lifecycle.join(self.channel_layer)
        self.attend(room, user)
        groups = [room.group_name]
        if user.is_authenticated:
            groups.insert(0, user_group_name(user.pk))
        await self.join(*groups, batched=room.kind == Room.Kind.BROADCAST)
        snapshot = await database_sync_to_async(socket_snapshot)(
            user_id=user.pk, room_id=room.pk, after=after
        )
        assert self.presence is not None
        return snapshot, await self.presence.join()

    def attend(self, room: Room, user: Any) -> None:
        """The room's collaborators, each given what it needs of this socket."""
        self.room = room
        send, layer = self.send_text, self.channel_layer
        self.audience = Audience(
            layer,
            room=room,
            user=user,
            delivery=self.delivery,
            send=send,
            message=self.chat_message,
            wire=self.wire,
            idle=lambda: not self.inbox.messages and self.opened and not self.closing,
        )
        self.commands = Commands(layer, room=room, user=user, delivery=self.delivery)
        self.moderation = Moderation(
            room=room, user=user, send=send, close=lambda code: self.close(code=code)
        )
        self.presence = Presence(
            layer, room=room, user=user, channel_name=self.channel_name, send=send
        )

    async def disconnect(self, code: int) -> None:
        self.lifecycle.leave()
        if self.presence is not None:
            await self.presence.leave()
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
        if self.commands.rate_limited_in_a_row >= FLOOD_CLOSE_AFTER:
            await self.delivery.settle()  # every acknowledgement goes before the close
            await self.close(code=CloseCode.FLOODING)

    async def ping(self, command: protocol.Ping) -> None:
        await self.delivery.answer('{"type":"pong"}')

    handlers: dict[type[Any], Callable[[RoomConsumer, Any], Awaitable[None]]] = {
        protocol.SendMessage: lambda socket, command: socket.commands.send_message(command),
        protocol.Typing: lambda socket, command: socket.commands.typing(command),
        protocol.History: lambda socket, command: socket.commands.history(command),
        protocol.EditMessage: lambda socket, command: socket.commands.edit_message(command),
        protocol.DeleteMessage: lambda socket, command: socket.commands.delete_message(command),
        protocol.Read: lambda socket, command: socket.commands.read(command),
        protocol.Ping: ping,
        protocol.React: lambda socket, command: socket.commands.react(command),
        protocol.Comment: lambda socket, command: socket.audience.comment(command),
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
        assert self.presence is not None
        await self.presence.arrived(event)

    async def chat_reactions(self, event: dict[str, Any]) -> None:
        await self.send_text(event["text"])

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event["user_id"] != self.scope["user"].pk:
            await self.send_text(event["text"])

    # --- the room's collaborators' events -------------------------------------------------

    def take_batch(self, batch: dict[str, Any]) -> bool:
        return self.audience.take_batch(batch)

    async def chat_messages(self, event: dict[str, Any]) -> None:
        await self.audience.messages(event)

    async def chat_state(self, event: dict[str, Any]) -> None:
        await self.audience.state(event)

    async def chat_viewers(self, event: dict[str, Any]) -> None:
        await self.audience.viewers(event)

    async def chat_comment(self, event: dict[str, Any]) -> None:
        await self.audience.comment_arrived(event)

    async def chat_room_changed(self, event: dict[str, Any]) -> None:
        await self.moderation.room_changed(event)

    async def chat_access_lost(self, event: dict[str, Any]) -> None:
        await self.moderation.access_lost(event)

    async def chat_mute_changed(self, event: dict[str, Any]) -> None:
        await self.moderation.mute_changed(event)
