"""The notes socket, `/ws/rooms/<slug>/notes/`: y-protocols over binary frames (docs/protocol.md).

The thin edge: authentication and the room as the room socket has them
(chat.sockets.room), a message read strictly (chat/notes/codec.py), an update
stored through chat.notes.actions before it is applied, acknowledged or
relayed, and the worker's copy of the document (chat/notes/room.py) to
answer sync step 1 from.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from autobahn.exception import Disconnected
from django.conf import settings
from django.db import DatabaseError

from chat.actions.outbox import deliver, run
from chat.domain.access import may_publish, room_for_user, still_readable
from chat.errors import ChatError
from chat.models import SLUG_PATTERN, Room
from chat.notes import actions as notes_actions
from chat.notes import codec
from chat.notes.room import NotesRoom, notes_hub
from chat.platform import outages
from chat.platform.db import database_sync_to_async
from chat.platform.groups import notes_group_name, user_group_name
from chat.platform.layers import LAYER_ERRORS
from chat.protocol import CloseCode
from chat.sockets.base import Socket

logger = logging.getLogger(__name__)
_SLUG = re.compile(SLUG_PATTERN)


def acks_wanted(query_string: bytes) -> bool:
    """Whether the client asked for `100,<n>` acknowledgements (`?acks=1`)."""
    return re.search(rb"(?:^|&)acks=1(?:&|$)", query_string) is not None


class NotesConsumer(Socket):
    # A mute is read with every write (chat.notes.actions).
    ignores = frozenset({"chat.mute_changed"})
    room_id = 0
    notes: NotesRoom | None = None
    # None: may write; else the reason a write is refused (codec.READ_ONLY, ARCHIVED).
    read_only: str | None = None
    acks = False
    room_kind = ""
    # Update messages (sync step 2 and update) received and settled, for `100,<n>`.
    settled = 0
    compacting: asyncio.Task[Any] | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        code = self.scope.get("auth_close_code")
        if code or not user.is_authenticated:
            # Notes are for people signed in, even in a broadcast room open to viewers.
            return await self.refuse(CloseCode(code or CloseCode.UNAUTHENTICATED))
        slug = self.scope["url_route"]["kwargs"]["slug"]
        if not _SLUG.fullmatch(slug):
            return await self.refuse(CloseCode.NOT_FOUND)
        self.acks = acks_wanted(self.scope.get("query_string", b""))
        try:
            room = await database_sync_to_async(room_for_user)(user=user, slug=slug)
            self.room_id = room.pk
            self.room_kind = room.kind
            if room.archived:
                self.read_only = codec.ARCHIVED
            elif not may_publish(user=user, room=room):
                self.read_only = codec.READ_ONLY
            await self.lifecycle.join(self.channel_layer)
            await self.join(user_group_name(user.pk))
            self.notes = await notes_hub(self.channel_layer).join(room.pk, self)
        except ChatError as error:
            return await self.refuse(error.close_code or CloseCode.NOT_FOUND)
        except (*LAYER_ERRORS, DatabaseError) as error:
            return await self.refuse_unavailable(error)
        if self.lifecycle.restarted:
            return await self.refuse(CloseCode.SERVICE_RESTART)
        await self.accept()
        # As y-websocket's server: our state vector (the client answers with what we
        # lack), then who is there.
        await self.send_bytes(codec.sync_step1(self.notes.doc.get_state()))
        present = self.notes.awareness_now()
        if present:
            await self.send_bytes(codec.awareness(present))
        await self.lifecycle.open()

    async def disconnect(self, code: int) -> None:
        self.lifecycle.leave()
        notes = self.notes
        if notes is not None:
            self.notes = None
            gone = notes.awareness_of(self.channel_name)
            if gone:
                notes.awareness_arrived(gone, self.channel_name)
                await self.awareness_tell(gone)
            await notes_hub(self.channel_layer).leave(self.room_id, self)
        await self.leave_groups()

    def shards(self) -> set[int]:
        """Its groups' and its room copy's: after a Redis restart on one, the client
        reconnects and syncs against a current copy. (No tail check of the watcher's:
        the room copy runs its own, chat/notes/room.py.)"""
        groups = [*self.groups_joined, notes_group_name(self.room_id)]
        return {self.channel_layer.consistent_hash(group) for group in groups}

    # --- client messages --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.notes is None:
            return
        if bytes_data is None:
            return await self.close(code=CloseCode.MALFORMED)  # binary frames only
        if len(bytes_data) > settings.CHAT_NOTES_FRAME_MAX_BYTES:
            return await self.close(code=CloseCode.TOO_BIG)
        try:
            message = codec.message_read(bytes_data)
        except codec.Malformed:
            return await self.close(code=CloseCode.MALFORMED)
        if isinstance(message, codec.SyncStep1):
            await self.send_bytes(codec.sync_step2(self.notes.doc.get_update(message.state)))
        elif isinstance(message, codec.SyncStep2 | codec.SyncUpdate):
            await self.update(message.update)
        elif isinstance(message, codec.Awareness):
            self.notes.awareness_arrived(message.entries, self.channel_name)
            await self.awareness_tell(list(message.entries))
        elif isinstance(message, codec.QueryAwareness):
            await self.send_bytes(codec.awareness(self.notes.awareness_now()))

    async def update(self, update: bytes) -> None:
        """Store the update, then apply it, acknowledge it and relay it; or refuse it."""
        assert self.notes is not None
        user = self.scope["user"]
        try:
            if update == codec.EMPTY_UPDATE:
                return
            if self.read_only is not None:
                return await self.send_bytes(codec.auth_denied(self.read_only))
            wait = notes_hub(self.channel_layer).pace(user.pk).take()
            if wait > 0:
                await asyncio.sleep(wait)  # backpressure: this socket's next frames wait too
            if self.notes.would_exceed(update, settings.CHAT_NOTES_MAX_BYTES):
                return await self.send_bytes(codec.auth_denied(codec.TOO_LARGE))
            try:
                appended, outbox = await run(
                    notes_actions.notes_append,
                    room_id=self.room_id,
                    user=user,
                    update=update,
                    origin=self.channel_name,
                )
            except ChatError as error:
                if error.close_code is not None:
                    return await self.close(code=error.close_code)
                if error.code == "room_archived":
                    self.read_only = codec.ARCHIVED
                elif error.code == "forbidden":
                    self.read_only = codec.READ_ONLY
                reason = codec.ARCHIVED if error.code == "room_archived" else codec.READ_ONLY
                return await self.send_bytes(codec.auth_denied(reason))
            except DatabaseError as error:
                # Not stored: the client keeps the edit and sends it again on reconnect.
                outages.DATABASE.refused(error)
                return await self.close(code=CloseCode.TRY_AGAIN_LATER)
            if not self.notes.arrived(appended.number, update, self.channel_name):
                self.notes.hole_wait()
        finally:
            if not self.closing:
                self.settled += 1
                if self.acks:
                    await self.send_bytes(codec.acked(self.settled))
        try:
            await deliver(self.channel_layer, outbox)
        except LAYER_ERRORS:
            # Stored: the other workers read it at their next tail check.
            logger.warning("relay of notes update %d failed", appended.number, exc_info=True)
        if appended.compact_due and (self.compacting is None or self.compacting.done()):
            self.compacting = asyncio.ensure_future(self.compact())

    async def compact(self) -> None:
        try:
            await run(notes_actions.notes_compact, room_id=self.room_id)
        except DatabaseError:
            logger.warning("compaction of room %d's notes failed", self.room_id, exc_info=True)

    async def awareness_tell(self, entries: list[codec.AwarenessEntry]) -> None:
        payload = [{"client_id": e.client_id, "clock": e.clock, "state": e.state} for e in entries]
        try:
            await notes_actions.notes_awareness_tell(
                self.channel_layer, room_id=self.room_id, entries=payload, origin=self.channel_name
            )
        except LAYER_ERRORS:
            logger.warning("awareness relay failed", exc_info=True)

    # --- events -----------------------------------------------------------------------------

    async def notes_frame(self, event: dict[str, Any]) -> None:
        """A frame the room's copy handed out: an update or awareness of someone else's."""
        await self.send_bytes(event["data"])

    async def chat_room_changed(self, event: dict[str, Any]) -> None:
        """The room changed in the admin or by its owners: a person who may no longer
        read it is closed as the room socket closes them (4404); archiving makes the
        notes read-only at once (every write is checked again in its transaction)."""
        self.room_kind = event["kind"]
        if not still_readable(
            user=self.scope["user"],
            kind=event["kind"],
            public_viewing=event["public_viewing"],
            member_ids=event["member_ids"],
        ):
            return await self.close(code=CloseCode.NOT_FOUND)
        if event["archived"]:
            self.read_only = codec.ARCHIVED
        elif self.read_only == codec.ARCHIVED:
            self.read_only = None

    async def chat_access_lost(self, event: dict[str, Any]) -> None:
        """A member removed from a private or direct room: gone for them (4404)."""
        if self.room_kind != Room.Kind.PUBLIC and self.scope["user"].pk in event["user_ids"]:
            await self.close(code=CloseCode.NOT_FOUND)

    async def send_bytes(self, data: bytes) -> None:
        """Write one binary frame; a client already closing is left to its disconnect."""
        try:
            await self.base_send({"type": "websocket.send", "bytes": data})
        except Disconnected:
            self.closing = True
