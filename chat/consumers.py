"""The room socket: a thin async edge over chat.services (docs/protocol-v1.md, The WebSocket).

Each client frame is parsed, checked, handed to one service call, and its
result broadcast to the room's group. Broadcast handlers send ready-made text
and keep every client's `message` ids strictly increasing and without holes:
a message that arrives ahead of its predecessors (two workers committing at
once, or the layer dropping one) is preceded by the missing ones, read from
the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError

from chat import events
from chat.access import room_for_user
from chat.errors import ChatError
from chat.layers import LAYER_ERRORS, EpochWatch, Inbox, epoch_watch_join, first_in
from chat.limits import rate_release, rate_reserve
from chat.models import SLUG_PATTERN, Message, Room, user_group_name
from chat.presence import presence_join, presence_leave, socket_member
from chat.protocol import CloseCode
from chat.services import (
    MAX_NUMBER,
    Snapshot,
    client_id_clean,
    message_create,
    message_delete,
    message_edit,
    messages_between,
    room_read,
    room_snapshot,
)

logger = logging.getLogger(__name__)

TYPING_INTERVAL = 2.0
# Ten `rate_limited` answers in a row on one socket close it (docs/protocol-v1.md, 4429).
FLOOD_CLOSE_AFTER = 10
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_SLUG = re.compile(SLUG_PATTERN)
Frame = dict[str, Any]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_load(text: str) -> object:
    """Strict JSON (no NaN or Infinity), or ChatError(bad_request)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ChatError("bad_request", "the frame is not JSON") from None


def frame_check(frame: object) -> Frame:
    """A JSON value that is an object with a string `type`, or ChatError(bad_request)."""
    if not isinstance(frame, dict):
        raise ChatError("bad_request", "the frame is not a JSON object")
    if not isinstance(frame.get("type"), str):
        raise ChatError("bad_request", "the frame has no type")
    return frame


def frame_client_id(frame: object) -> str | None:
    """The frame's client_id, when it is one the server may echo."""
    if not isinstance(frame, dict):
        return None
    client_id = frame.get("client_id")
    try:
        return client_id_clean(client_id)
    except ChatError:
        return None


_missing: dict[tuple[int, int, int], asyncio.Future[list[Message]]] = {}


async def messages_missing(*, room_id: int, after: int, before: int) -> list[Message]:
    """messages_between, read once for every socket of this process missing the same ones.

    A message the layer dropped for a process is missing on all its sockets
    in the room at once: one query serves them all.
    """
    key = (room_id, after, before)
    future = _missing.get(key)
    if future is None:
        future = asyncio.ensure_future(
            database_sync_to_async(messages_between)(room_id=room_id, after=after, before=before)
        )
        _missing[key] = future
        future.add_done_callback(lambda _: _missing.pop(key, None))
    return await asyncio.shield(future)


def welcome_snapshot(*, user_id: int, room_id: int, after: int | None) -> Snapshot:
    """room_snapshot, read once the socket is in its groups; refuses a deactivated user.

    The account is read again here: one deactivated after the handshake was
    authenticated, but before its group heard of it, is refused all the same.
    """
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        raise ChatError("forbidden", "this account is deactivated", close_code=CloseCode.FORBIDDEN)
    return room_snapshot(room_id=room_id, after=after)


def whole_number(frame: Frame, field: str, *, default: int | None, minimum: int = 0) -> int | None:
    """An optional whole-number field, or ChatError(bad_request)."""
    value = frame.get(field)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ChatError("bad_request", f"{field} must be a whole number >= {minimum}")
    return value


class RoomConsumer(AsyncWebsocketConsumer):
    room: Room | None = None
    epoch_watch: EpochWatch | None = None
    rate_limited_in_a_row = 0
    # (room id, Redis member) while this socket counts as online.
    presence_entry: tuple[int, str] | None = None
    # The highest message id this client has (sent, or older than its welcome).
    last_sent = 0
    # The room's presence version at the welcome, and of the last news told of each user.
    presence_base = 0
    presence_told: dict[str, int]
    typing_at = 0.0
    # Messages that came ahead of a missing one, by number, and the timer after
    # which the missing ones are read from the database.
    early: dict[int, dict[str, Any]]
    hole_timer: asyncio.TimerHandle | None = None
    inbox: Inbox
    # Set once the handshake is accepted, and once connect() has sent the
    # welcome and the replay.
    accepted = False
    opened = False
    # Set once this socket has joined its user's group (moderation events).
    user_group: str | None = None
    # Set once the socket is closing (by the server, or a send found the client
    # gone): nothing more is acted on but the disconnect, which cleans up.
    closing = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """AsyncConsumer's, with client events and layer messages read from one inbox.

        Channels races a receive task for each against the other for every
        event (asyncio.wait, and a new task each time): for a socket that
        mostly passes broadcasts on, that was a third of the work. Here a
        task forwards the client's events into the channel's inbox, and the
        consumer awaits that alone; dispatch is the same, one event at a time.
        """
        # Live messages, hole filling and the watcher's tail check take turns.
        self.delivery = asyncio.Lock()
        self.presence_told = {}
        self.early = {}
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        inbox = self.inbox = self.channel_layer.inbox(self.channel_name)

        async def forward() -> None:
            while True:
                inbox.put_client(await receive())

        forwarding = asyncio.ensure_future(forward())
        try:
            while True:
                await self.dispatch(await inbox.get_any())
        except StopConsumer:
            pass
        finally:
            forwarding.cancel()
            if self.hole_timer is not None:
                self.hole_timer.cancel()
            self.channel_layer.discard_inbox(self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # After the server's close, neither a client frame (a deactivated
        # user's, say) nor a broadcast is acted on; only the disconnect is.
        if self.closing and message["type"] != "websocket.disconnect":
            return
        # Channels' dispatch runs aclose_old_connections() (a thread hop) before
        # every event. Every database call here goes through
        # database_sync_to_async, which closes stale connections itself, and
        # broadcast handlers never touch the database: the hop is pure cost.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if message["type"] == "websocket.disconnect":
            try:
                await handler(message)
            except StopConsumer:
                raise
            except Exception:
                # Raised out of here, daphne would log it as a crash of the
                # application; the socket is gone either way.
                logger.exception("websocket.disconnect failed; the socket's clean-up stopped")
                await aclose_old_connections()  # as Channels' own disconnect ends
                raise StopConsumer() from None
            return
        try:
            await handler(message)
        except Exception:
            # Raised out of here, it would end the consumer without its
            # disconnect: its group membership and presence would outlive it.
            # (And 1011, the standard code, is one daphne refuses to send.)
            logger.exception(
                "%s failed; closing the socket with %d", message["type"], CloseCode.INTERNAL_ERROR
            )
            await self.refuse(CloseCode.INTERNAL_ERROR)

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            # The client's close is under way and daphne refuses sends; its
            # websocket.disconnect follows, and with it the clean-up.
            self.closing = True

    # --- connecting -------------------------------------------------------

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol=subprotocol, headers=headers)
        self.accepted = True

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        already = self.closing
        self.closing = True
        if isinstance(code, CloseCode):
            code = int(code)  # daphne (autobahn) refuses any type but int itself
        try:
            await super().close(code=code, reason=reason)
        except Disconnected:
            if not already:
                logger.debug("close of a socket the client had closed")

    async def refuse(self, code: CloseCode) -> None:
        """Close with `code`, accepting first if need be, so that the client can read why."""
        if self.epoch_watch is not None:
            # Refused after joining the watch: it must not close this socket again.
            self.epoch_watch.consumers.discard(self)
            self.epoch_watch = None
        if not self.accepted:
            await self.accept()
        await self.close(code=code)

    async def connect(self) -> None:
        user = self.scope["user"]
        if self.scope.get("auth_close_code"):
            return await self.refuse(self.scope["auth_close_code"])
        # keep_blank_values: `?after=` is present and not a whole number (4400),
        # not the same as no `after` at all.
        query = parse_qs(
            self.scope.get("query_string", b"").decode("latin1"), keep_blank_values=True
        )
        after: int | None = None
        if "after" in query:
            raw = query["after"][0]
            if not _WHOLE_NUMBER.fullmatch(raw):
                return await self.refuse(CloseCode.BAD_QUERY)
            # Any whole number is valid; one of more digits than MAX_NUMBER has
            # is beyond every id (and int() refuses over 4300 digits).
            after = MAX_NUMBER if len(raw) > 19 else min(int(raw), MAX_NUMBER)
        slug = self.scope["url_route"]["kwargs"]["slug"]
        if not _SLUG.fullmatch(slug):
            # No room has such a slug. Checked before the query: a NUL in it
            # would make PostgreSQL fail (DataError), answered 4013 "try again"
            # instead of 4404.
            return await self.refuse(CloseCode.NOT_FOUND)
        try:
            room = await database_sync_to_async(room_for_user)(user=user, slug=slug)
        except ChatError:
            return await self.refuse(CloseCode.NOT_FOUND)
        except DatabaseError:
            logger.exception("database unavailable at connect")
            return await self.refuse(CloseCode.TRY_AGAIN_LATER)
        try:
            # Watch the epoch before joining the group: a Redis restart after
            # the watch's look closes this socket (4012); one before it is
            # already the Redis that group_add reaches. (Joined after the group,
            # a socket could be deafened in between and never be told.)
            self.epoch_watch = await epoch_watch_join(self.channel_layer, self)
            # Join before reading the backlog: whatever is committed after the
            # read arrives live, and anything in both is dropped by id. The
            # user's group likewise comes before the account is read again.
            self.user_group = user_group_name(user.pk)
            await asyncio.wait_for(
                self.channel_layer.group_add(self.user_group, self.channel_name),
                settings.CHAT_LAYER_TIMEOUT,
            )
            await asyncio.wait_for(
                self.channel_layer.group_add(room.group_name, self.channel_name),
                settings.CHAT_LAYER_TIMEOUT,
            )
            self.room = room
            snapshot = await database_sync_to_async(welcome_snapshot)(
                user_id=user.pk, room_id=room.pk, after=after
            )
            member = socket_member(
                user_id=user.pk, username=user.get_username(), channel_name=self.channel_name
            )
            joined = await asyncio.wait_for(
                presence_join(
                    self.channel_layer.connection(0),
                    room_id=room.pk,
                    user_id=user.pk,
                    member=member,
                ),
                settings.CHAT_LAYER_TIMEOUT,
            )
            self.presence_entry = (room.pk, member)
            self.presence_base = joined.version
        except LAYER_ERRORS:
            logger.warning("channel layer unavailable at connect", exc_info=True)
            return await self.refuse(CloseCode.TRY_AGAIN_LATER)
        except DatabaseError:
            logger.exception("database unavailable at connect")
            return await self.refuse(CloseCode.TRY_AGAIN_LATER)
        except ChatError as error:
            # Deactivated since the handshake was authenticated.
            return await self.refuse(error.close_code or CloseCode.FORBIDDEN)
        if self.epoch_watch is None:
            # The watch saw Redis restart while this socket was joining.
            return await self.refuse(CloseCode.SERVICE_RESTART)
        await self.accept()
        await self.send(
            text_data=events.dumps(
                {
                    "type": "welcome",
                    "room": events.room_frame(room),
                    "user": {"username": user.get_username()},
                    "online": joined.online,
                    "last_id": snapshot.last_number or None,
                }
            )
        )
        if snapshot.gap is not None:
            gap_after, gap_before = snapshot.gap
            await self.send(
                text_data=events.dumps({"type": "gap", "after": gap_after, "before": gap_before})
            )
        for message in snapshot.messages:
            await self.send_message(message)
        self.last_sent = snapshot.last_number
        self.opened = True
        if joined.came_online or joined.ghosts:
            try:
                if joined.came_online:
                    await self.group_send(
                        events.chat_presence(
                            joined=[user.get_username()],
                            version=joined.version,
                            channel=self.channel_name,
                        )
                    )
                if joined.ghosts:
                    await self.group_send(
                        events.chat_presence(left=joined.ghosts, version=joined.version)
                    )
            except LAYER_ERRORS:
                logger.warning("presence broadcast failed", exc_info=True)
        if self.epoch_watch is None:
            await self.close(
                code=CloseCode.SERVICE_RESTART
            )  # Redis restarted during the welcome or replay

    async def disconnect(self, code: int) -> None:
        if self.epoch_watch is not None:
            self.epoch_watch.consumers.discard(self)
        if self.presence_entry is not None and self.room is not None:
            user = self.scope["user"]
            room_id, member = self.presence_entry
            try:
                went_offline, version = await asyncio.wait_for(
                    presence_leave(
                        self.channel_layer.connection(0),
                        room_id=room_id,
                        user_id=user.pk,
                        member=member,
                    ),
                    settings.CHAT_LAYER_TIMEOUT,
                )
                if went_offline:
                    await self.group_send(
                        events.chat_presence(left=[user.get_username()], version=version)
                    )
            except LAYER_ERRORS:
                # The entry expires within presence.TTL; a sweep then says `left`.
                logger.warning("presence leave failed", exc_info=True)
            self.presence_entry = None
        groups = [self.user_group, self.room and self.room.group_name]
        for group in filter(None, groups):
            try:
                await asyncio.wait_for(
                    self.channel_layer.group_discard(group, self.channel_name),
                    settings.CHAT_LAYER_TIMEOUT,
                )
            except LAYER_ERRORS:
                # The group entry expires with the layer's group_expiry.
                logger.warning("group_discard failed", exc_info=True)

    # --- client frames ----------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            if bytes_data is not None and len(bytes_data) > settings.CHAT_FRAME_MAX_BYTES:
                # The 64 KiB limit counts the bytes of any message, binary too.
                await self.close(code=CloseCode.TOO_BIG)
                return
            await self.send(
                text_data=events.error_frame("bad_request", "binary frames are not accepted")
            )
            return
        # 4 bytes per code point at most: only long frames need encoding to measure.
        if len(text_data) * 4 > settings.CHAT_FRAME_MAX_BYTES and (
            len(text_data.encode("utf-8")) > settings.CHAT_FRAME_MAX_BYTES
        ):
            await self.close(code=CloseCode.TOO_BIG)
            return
        # The JSON value, kept apart from the checked frame: an error answers
        # with its client_id even when the frame has no valid type.
        parsed: object = None
        frame: Frame | None = None
        try:
            parsed = json_load(text_data)
            frame = frame_check(parsed)
            handler = self.frame_handlers.get(frame["type"])
            if handler is None:
                raise ChatError("bad_request", "unknown frame type")
            await handler(self, frame)
        except ChatError as error:
            if error.close_code is not None:
                await self.close(code=error.close_code)
                return
            await self.send(
                text_data=events.error_frame(
                    error.code,
                    error.detail,
                    client_id=frame_client_id(parsed),
                    retry_after=error.retry_after,
                )
            )
            if self.rate_limited_in_a_row >= FLOOD_CLOSE_AFTER:
                await self.close(code=CloseCode.FLOODING)
        except (DatabaseError, *LAYER_ERRORS):
            logger.exception("could not serve a %s frame", frame and frame.get("type"))
            await self.send(
                text_data=events.error_frame(
                    "unavailable", "try again shortly", client_id=frame_client_id(frame)
                )
            )

    async def receive_message_send(self, frame: Frame) -> None:
        assert self.room is not None
        user = self.scope["user"]
        connection = self.channel_layer.connection(0)
        try:
            place = await asyncio.wait_for(
                rate_reserve(connection, user_id=user.pk), settings.CHAT_LAYER_TIMEOUT
            )
        except ChatError:
            self.rate_limited_in_a_row += 1  # receive() closes with 4429 at ten
            raise
        self.rate_limited_in_a_row = 0
        created = False
        try:
            message, created = await database_sync_to_async(message_create)(
                room_id=self.room.pk,
                author=user,
                body=frame.get("body"),
                client_id=frame.get("client_id"),
            )
        finally:
            if not created:
                # Only newly stored messages count against the limit.
                await asyncio.wait_for(
                    rate_release(connection, user_id=user.pk, member=place),
                    settings.CHAT_LAYER_TIMEOUT,
                )
        if not created:
            # A resend: the stored message, to this socket only.
            await self.send(text_data=events.message_frame(message, for_author=True))
            return
        event = events.chat_message(message)
        try:
            await self.group_send(event)
        except LAYER_ERRORS:
            # Stored, so acknowledged: the others catch up when they resume.
            logger.warning("broadcast of %s failed", message, exc_info=True)
            await self.chat_message(event)

    async def receive_typing(self, frame: Frame) -> None:
        assert self.room is not None
        now = time.monotonic()
        if now - self.typing_at < TYPING_INTERVAL:
            return
        self.typing_at = now
        user = self.scope["user"]
        # The limit is per user and room, not per socket: the user's other
        # sockets, on any worker, share it (the check above saves a round trip).
        key = f"typing:{self.room.pk}:{user.pk}"
        if not await asyncio.wait_for(
            first_in(self.channel_layer, key, TYPING_INTERVAL), settings.CHAT_LAYER_TIMEOUT
        ):
            return
        await self.group_send(events.chat_typing(user_id=user.pk, username=user.get_username()))

    async def receive_history(self, frame: Frame) -> None:
        assert self.room is not None
        before = whole_number(frame, "before", default=None)
        limit = whole_number(frame, "limit", default=50, minimum=1)
        assert limit is not None
        if limit > 100:
            raise ChatError("bad_request", "limit must be 1 to 100")
        if before is not None:
            before = min(before, MAX_NUMBER)
        messages, has_more = await database_sync_to_async(Message.objects.page)(
            room_id=self.room.pk, before=before, limit=limit
        )
        await self.send(
            text_data=events.history_frame(
                messages, user_id=self.scope["user"].pk, has_more=has_more
            )
        )

    async def receive_message_edit(self, frame: Frame) -> None:
        assert self.room is not None
        if "id" not in frame:
            raise ChatError("bad_request", "id is missing")
        message = await database_sync_to_async(message_edit)(
            room_id=self.room.pk,
            number=frame["id"],
            user=self.scope["user"],
            body=frame.get("body"),
        )
        await self.group_send(events.chat_message_edited(message))

    async def receive_message_delete(self, frame: Frame) -> None:
        assert self.room is not None
        if "id" not in frame:
            raise ChatError("bad_request", "id is missing")
        message = await database_sync_to_async(message_delete)(
            room_id=self.room.pk, number=frame["id"], user=self.scope["user"]
        )
        await self.group_send(events.chat_message_deleted(message))

    async def receive_read(self, frame: Frame) -> None:
        assert self.room is not None
        if "id" not in frame:
            raise ChatError("bad_request", "id is missing")
        await database_sync_to_async(room_read)(
            room=self.room, user=self.scope["user"], number=frame["id"]
        )

    async def receive_ping(self, frame: Frame) -> None:
        await self.send(text_data='{"type":"pong"}')

    frame_handlers: dict[str, Callable[[RoomConsumer, Frame], Awaitable[None]]] = {
        "message.send": receive_message_send,
        "typing": receive_typing,
        "history": receive_history,
        "message.edit": receive_message_edit,
        "message.delete": receive_message_delete,
        "read": receive_read,
        "ping": receive_ping,
    }

    async def group_send(self, event: dict[str, Any]) -> None:
        assert self.room is not None
        await asyncio.wait_for(
            self.channel_layer.group_send(self.room.group_name, event), settings.CHAT_LAYER_TIMEOUT
        )

    # --- group events (no database, no serialising) ----------------------

    async def send_message(self, message: Message) -> None:
        """Send one stored message, rendered for this socket's user."""
        await self.send(
            text_data=events.message_frame(
                message, for_author=message.author_id == self.scope["user"].pk
            )
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        number = event["id"]
        if number <= self.last_sent:
            return  # already sent: replayed on resume, or filled in as a hole
        async with self.delivery:
            if number <= self.last_sent:
                return  # the tail check sent it meanwhile
            if number > self.last_sent + 1:
                # Messages stored through another worker come through its own
                # broadcast, which may be a moment behind this one: hold this
                # one for up to CHAT_HOLE_WAIT before reading the hole from the
                # database (which, done at once, was a fifth of a worker's work
                # with two workers sending into one room).
                self.early[number] = event
                self.wait_for_hole()
                return
            await self.send_event(event)
            await self.send_early()

    def wait_for_hole(self) -> None:
        """Unless already waiting: a chat.hole_expired event in CHAT_HOLE_WAIT seconds."""
        if self.hole_timer is None:
            self.hole_timer = asyncio.get_running_loop().call_later(
                settings.CHAT_HOLE_WAIT, self.inbox.put, {"type": "chat.hole_expired"}
            )

    async def send_event(self, event: dict[str, Any]) -> None:
        mine = event["author_id"] == self.scope["user"].pk
        await self.send(text_data=event["author_text"] if mine else event["text"])
        self.last_sent = event["id"]

    async def send_early(self) -> None:
        """Send the held messages that now follow on; forget those already sent."""
        while (event := self.early.pop(self.last_sent + 1, None)) is not None:
            await self.send_event(event)
        for number in [number for number in self.early if number <= self.last_sent]:
            del self.early[number]
        if not self.early and self.hole_timer is not None:
            self.hole_timer.cancel()
            self.hole_timer = None

    async def chat_hole_expired(self, event: dict[str, Any]) -> None:
        """A hole outlived CHAT_HOLE_WAIT: its messages come from the database."""
        self.hole_timer = None
        await self.fill_early()

    async def fill_early(self, *, held_too: bool = False) -> None:
        """Read the hole before the held messages (and those too, `held_too`) from the database."""
        async with self.delivery:
            if not self.early:
                return
            before = max(self.early) + 1 if held_too else min(self.early)
            if not await self.fill_hole(before=before):
                return
            await self.send_early()
            if self.early:
                self.wait_for_hole()  # another hole further on gets its own wait

    async def catch_up(self, last_numbers: dict[int, int]) -> None:
        """The watcher's tail check: send what the room has beyond the last message sent."""
        if not self.opened or self.closing or self.room is None:
            return
        last = last_numbers.get(self.room.pk, 0)
        if last <= self.last_sent:
            return
        async with self.delivery:
            if last > self.last_sent and not self.closing:
                logger.info("socket caught up on %s..%s", self.last_sent + 1, last)
                if await self.fill_hole(before=last + 1):
                    await self.send_early()

    async def fill_hole(self, *, before: int) -> bool:
        """Send the stored messages between the last one sent and `before`; False if closed."""
        assert self.room is not None
        try:
            missing = await messages_missing(
                room_id=self.room.pk, after=self.last_sent, before=before
            )
        except DatabaseError:
            # Better a resume than a hole: the client comes back with after=.
            logger.exception("could not fill a hole before %s", before)
            await self.close(code=CloseCode.TRY_AGAIN_LATER)  # nothing more goes out on this socket
            return False
        for message in missing:
            await self.send_message(message)
        self.last_sent = before - 1
        return True

    async def chat_message_edited(self, event: dict[str, Any]) -> None:
        # Held messages go first, as stored now (the held copy may be the one
        # changed), so that the client knows a message before its change.
        await self.fill_early(held_too=True)
        await self.send(text_data=event["text"])

    async def chat_message_deleted(self, event: dict[str, Any]) -> None:
        await self.fill_early(held_too=True)
        await self.send(text_data=event["text"])

    async def chat_presence(self, event: dict[str, Any]) -> None:
        if event["channel"] == self.channel_name:
            return
        # Workers broadcast their decisions in their own time: pass on news of
        # a user only if it is newer than the welcome and the last news of them.
        version = event["version"]
        fresh: dict[str, list[str]] = {"joined": [], "left": []}
        for change in ("joined", "left"):
            for username in event[change]:
                if version > max(self.presence_base, self.presence_told.get(username, 0)):
                    self.presence_told[username] = version
                    fresh[change].append(username)
        if fresh["joined"] == event["joined"] and fresh["left"] == event["left"]:
            await self.send(text_data=event["text"])
        elif fresh["joined"] or fresh["left"]:
            await self.send(text_data=events.presence_text(**fresh))

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event["user_id"] != self.scope["user"].pk:
            await self.send(text_data=event["text"])

    async def chat_room_changed(self, event: dict[str, Any]) -> None:
        assert self.room is not None
        self.room.kind = event["kind"]
        self.room.archived = event["archived"]
        members = event["member_ids"]
        if members is not None and self.scope["user"].pk not in members:
            await self.close(code=CloseCode.NOT_FOUND)  # the room is no longer there for this user
            return
        await self.send(text_data=event["text"])

    async def chat_access_lost(self, event: dict[str, Any]) -> None:
        assert self.room is not None
        if self.room.kind != Room.Kind.PUBLIC and self.scope["user"].pk in event["user_ids"]:
            await self.close(code=int(CloseCode.NOT_FOUND))  # daphne takes a plain int only

    async def chat_user_closed(self, event: dict[str, Any]) -> None:
        session_key = event["session_key"]
        if session_key is None or session_key == self.scope.get("auth_session_key"):
            await self.close(code=event["code"])

    async def chat_layer_lost(self, event: dict[str, Any]) -> None:
        await self.layer_restarted()

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


class NoSuchRoomConsumer(AsyncWebsocketConsumer):
    """A socket to a path that names no room: accepted, then closed with 4404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=int(CloseCode.NOT_FOUND))  # daphne takes a plain int only
