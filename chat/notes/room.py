"""A worker's copy of a room's notes, while it has sockets there, and the relay between workers.

- The copy is a pycrdt `Doc` holding every stored update up to `applied`,
  applied in number order: the snapshot and the updates after it when the
  first socket comes, then each update as this worker stores it or hears of
  it. An update that arrives ahead of a missing one waits (CHAT_HOLE_WAIT),
  then what is missing is read from the database.
- The worker is a member of the room's notes group (`notes-<pk>`) once, with
  a channel of its own (as chat/sockets/feeds.py does for rooms): every update
  another worker stores arrives once, and is handed to each local socket
  as a ready-made frame, in its inbox.
- Every socket that joins, and every CHAT_LAYER_CHECK_INTERVAL, the copy reads
  what it lacks from the database (one query when it lacks nothing): an
  update whose relay was lost (a Redis restart, a full queue) arrives at the
  latest then, and a client that connects is answered from a current copy.
- Awareness (who is there, their cursors) is kept per room in memory and
  relayed through the same group; a socket's states are removed when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError
from pycrdt import Doc, Text

from chat.notes import codec
from chat.notes.pace import Pace
from chat.notes.store import TEXT_NAME, notes_since
from chat.platform.db import database_sync_to_async
from chat.platform.groups import notes_group_name
from chat.platform.layers import LAYER_ERRORS, Inbox, Local
from chat.platform.loops import PerLoop
from chat.platform.redis import pools

logger = logging.getLogger(__name__)

# An awareness state not renewed for this long is gone (y-protocols' outdatedTimeout).
AWARENESS_TIMEOUT = 30.0


class Editor(Protocol):
    """What a room's copy needs of a socket."""

    channel_name: str
    inbox: Inbox


def frame_event(data: bytes) -> dict[str, Any]:
    """A frame for one socket's client, put in its inbox (handled by `notes_frame`)."""
    return {"type": "notes.frame", "data": data}


class NotesRoom:
    """One worker's copy of one room's notes."""

    def __init__(self, hub: NotesHub, room_id: int) -> None:
        self.hub = hub
        self.room_id = room_id
        self.group = notes_group_name(room_id)
        self.doc: Doc = Doc()
        self.text = self.doc.get(TEXT_NAME, type=Text)
        self.applied = 0
        self.pending: dict[int, bytes] = {}
        self.hole_timer: Local | None = None
        self.editors: set[Any] = set()
        self.channel = ""
        self.task: asyncio.Task[None] | None = None
        self.catching_up = asyncio.Lock()
        # An upper bound of the encoded document's size, made exact when it matters.
        self.size_bound = 0
        # Awareness: client id -> (entry, when it was last renewed, the socket's channel).
        self.awareness: dict[int, tuple[codec.AwarenessEntry, float, str]] = {}

    # --- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.channel = await self.hub.layer.new_channel()
        self.task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.hole_timer is not None:
            self.hole_timer.cancel()
        self.hub.layer.discard_inbox(self.channel)

    async def run(self) -> None:
        inbox = self.hub.layer.inbox(self.channel)
        check_at = time.monotonic() + settings.CHAT_LAYER_CHECK_INTERVAL
        while True:
            try:
                async with asyncio.timeout(max(0.0, check_at - time.monotonic())):
                    message = await inbox.get()
            except TimeoutError:
                # The tail check: a last update whose relay was lost shows no hole.
                check_at = time.monotonic() + settings.CHAT_LAYER_CHECK_INTERVAL
                await self.catch_up_quietly()
                continue
            if isinstance(message, Local):
                await message.run()  # the hole's wait is over
                continue
            kind = message["type"]
            if kind == "notes.update":
                if not self.arrived(message["number"], message["update"], message["origin"]):
                    self.hole_wait()
            elif kind == "notes.awareness":
                self.awareness_arrived(
                    [codec.entry_of(entry) for entry in message["entries"]], message["origin"]
                )
            elif kind in ("chat.room_changed", "chat.access_lost"):
                # The room's moderation (chat/sockets/moderation.py): every local editor decides.
                for editor in self.editors:
                    editor.inbox.put(message)

    # --- the document -----------------------------------------------------------------------

    def arrived(self, number: int, update: bytes, origin: str) -> bool:
        """A stored update: applied in order and handed to the local sockets but
        `origin`'s; False when one before it is missing (it waits in `pending`)."""
        if number <= self.applied:
            return True
        self.pending[number] = update
        while self.applied + 1 in self.pending:
            self.applied += 1
            self.apply(self.pending.pop(self.applied), origin if self.applied == number else "")
        return not self.pending

    def apply(self, update: bytes, origin: str) -> None:
        self.doc.apply_update(update)
        self.size_bound += len(update)
        self.hand_out(codec.sync_update(update), origin)

    def hand_out(self, frame: bytes, origin: str = "") -> None:
        event = frame_event(frame)
        for editor in self.editors:
            if editor.channel_name != origin:
                editor.inbox.put(event)

    def hole_wait(self) -> None:
        if self.hole_timer is None:
            inbox = self.hub.layer.inbox(self.channel)
            self.hole_timer = inbox.later(settings.CHAT_HOLE_WAIT, self.hole_waited)

    async def hole_waited(self) -> None:
        self.hole_timer = None
        if self.pending:
            await self.catch_up_quietly()

    async def catch_up(self) -> None:
        """Read from the database what the copy lacks, apply it, hand it out."""
        async with self.catching_up:
            since = await database_sync_to_async(notes_since)(
                room_id=self.room_id, after=self.applied
            )
            if since.snapshot is not None:
                self.doc.apply_update(since.snapshot)
                self.size_bound = len(self.doc.get_update())
                if self.applied > 0:  # the sockets had a copy before: they get the rest
                    self.hand_out(codec.sync_update(since.snapshot))
                self.applied = max(self.applied, since.snapshot_number)
            for number, update in since.updates:
                self.arrived(number, update, "")
            self.pending = {n: u for n, u in self.pending.items() if n > self.applied}

    async def catch_up_quietly(self) -> None:
        try:
            await self.catch_up()
        except DatabaseError as error:
            logger.warning("notes of room %d: catch-up failed: %r", self.room_id, error)

    def would_exceed(self, update: bytes, limit: int) -> bool:
        """Whether applying `update` takes the encoded document past `limit` bytes.

        Cheap while the bound is far from the limit; near it, measured exactly on
        a copy of the document with the update (a deletion is let through).
        """
        if self.size_bound + len(update) <= limit:
            return False
        current = self.doc.get_update()
        self.size_bound = len(current)
        if self.size_bound + len(update) <= limit:
            return False
        trial: Doc = Doc()
        trial.apply_update(current)
        trial.apply_update(update)
        return len(trial.get_update()) > limit

    # --- awareness --------------------------------------------------------------------------

    def awareness_arrived(self, entries: Iterable[codec.AwarenessEntry], origin: str) -> None:
        """Awareness states from a socket here or another worker's: kept, handed out."""
        now = time.monotonic()
        taken = []
        for entry in entries:
            known = self.awareness.get(entry.client_id)
            if known is None or known[0].clock < entry.clock or entry.state == "null":
                taken.append(entry)
                if entry.state == "null":
                    self.awareness.pop(entry.client_id, None)
                else:
                    self.awareness[entry.client_id] = (entry, now, origin)
        if taken:
            self.hand_out(codec.awareness(taken), origin)

    def awareness_now(self) -> list[codec.AwarenessEntry]:
        """Every state renewed within AWARENESS_TIMEOUT."""
        now = time.monotonic()
        stale = [cid for cid, (_, at, _) in self.awareness.items() if now - at > AWARENESS_TIMEOUT]
        for client_id in stale:
            del self.awareness[client_id]
        return [entry for entry, _, _ in self.awareness.values()]

    def awareness_of(self, channel: str) -> list[codec.AwarenessEntry]:
        """The states a socket set: removed (state null, clock + 1) when it closes."""
        return [
            codec.AwarenessEntry(client_id=entry.client_id, clock=entry.clock + 1, state="null")
            for entry, _, origin in self.awareness.values()
            if origin == channel
        ]


class NotesHub:
    """Per event loop and layer: the copies of the rooms the worker has notes sockets in."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.rooms: dict[int, NotesRoom] = {}
        self.locks: dict[int, asyncio.Lock] = {}
        self.paces: dict[int, Pace] = {}

    async def join(self, room_id: int, editor: Editor) -> NotesRoom:
        """The room's copy, current, with `editor` among its sockets.

        The group is joined (again: refreshing it) before the database is read:
        whatever is stored after the read arrives through it.
        """
        async with self.locks.setdefault(room_id, asyncio.Lock()):
            room = self.rooms.get(room_id)
            if room is None:
                room = NotesRoom(self, room_id)
                await room.start()
                self.rooms[room_id] = room
            room.editors.add(editor)
        try:
            await pools.bounded(self.layer.group_add(room.group, room.channel))
            await room.catch_up()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.leave(room_id, editor)
            raise
        return room

    async def leave(self, room_id: int, editor: Editor) -> None:
        """`editor` is gone; the last one out drops the copy and leaves the group."""
        async with self.locks.setdefault(room_id, asyncio.Lock()):
            room = self.rooms.get(room_id)
            if room is None or editor not in room.editors:
                return
            room.editors.discard(editor)
            if room.editors:
                return
            del self.rooms[room_id]
            room.stop()
            try:
                await pools.bounded(self.layer.group_discard(room.group, room.channel))
            except LAYER_ERRORS:
                logger.warning("leaving %s failed", room.group, exc_info=True)

    def pace(self, user_id: int) -> Pace:
        """The person's rate limit on this worker."""
        pace = self.paces.get(user_id)
        if pace is None:
            if len(self.paces) > 10_000:
                self.paces.clear()  # full buckets all: forgetting them forgives nobody much
            pace = self.paces[user_id] = Pace(*settings.CHAT_NOTES_RATE_LIMIT)
        return pace


_hubs: PerLoop[NotesHub] = PerLoop(NotesHub)


def notes_hub(layer: Any) -> NotesHub:
    """The running loop's hub for `layer` (a new one if the layer was replaced)."""
    return _hubs.get(layer)
