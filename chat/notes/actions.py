"""The writes of a room's shared notes (chat/notes/): store an update, clear, compact.

An update is numbered under a lock on the room's `NotesDocument` row and
inserted in the same transaction; its `notes.update` event goes to the
room's notes group (`notes-<pk>`) once that commits: stored before anyone
hears of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from pycrdt import Text

from chat.actions.outbox import deliver, send_on_commit
from chat.domain import events
from chat.domain.access import write_check
from chat.domain.author_state import author_may_write
from chat.errors import ChatError
from chat.models import NotesDocument, NotesUpdate, Room
from chat.notes import store
from chat.platform.groups import notes_group_name
from chat.protocol import CloseCode


@dataclass(frozen=True)
class Appended:
    number: int
    # Enough updates since the snapshot: the caller compacts (notes_compact).
    compact_due: bool


def _next_number(room_id: int) -> tuple[int, int]:
    """Take the room's next update number, locking its document row: (number, snapshot_number)."""
    table = NotesDocument._meta.db_table
    sql = f"UPDATE {table} SET last_number = last_number + 1 WHERE room_id = %s RETURNING last_number, snapshot_number"  # noqa: S608, E501  (a model table name)
    with connection.cursor() as cursor:
        cursor.execute(sql, [room_id])
        row = cursor.fetchone()
        if row is None:
            NotesDocument.objects.get_or_create(room_id=room_id)
            cursor.execute(sql, [room_id])
            row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def notes_append(
    *, room_id: int, user: User | AnonymousUser, update: bytes, origin: str
) -> Appended:
    """Store one update of the room's notes from `user` (the gate of a message: an
    archived room is read-only, a broadcast room takes its publishers' alone, a
    muted or deactivated author is refused), numbered; relayed on commit."""
    with transaction.atomic():
        room = Room.objects.filter(pk=room_id).first()
        if room is None:
            raise ChatError("not_found", "no such room")
        write_check(room=room, user=user, verb="write")
        if (
            room.kind in (Room.Kind.PRIVATE, Room.Kind.DIRECT)
            and not room.members.filter(pk=user.pk).exists()
        ):
            raise ChatError("not_found", "no such room", close_code=CloseCode.NOT_FOUND)
        assert user.pk is not None
        author_may_write(author_id=user.pk, room_id=room_id)
        number, snapshot_number = _next_number(room_id)
        NotesUpdate.objects.create(room_id=room_id, number=number, data=update, author_id=user.pk)
        send_on_commit(
            notes_group_name(room_id),
            events.notes_update(room_id=room_id, number=number, update=update, origin=origin),
        )
    return Appended(
        number=number,
        compact_due=number - snapshot_number >= settings.CHAT_NOTES_COMPACT_EVERY,
    )


def notes_compact(*, room_id: int) -> int:
    """Fold the room's stored updates into its snapshot and delete them; the number
    the snapshot now holds up to. A loader reads the snapshot and what came after."""
    with transaction.atomic():
        document = NotesDocument.objects.select_for_update().filter(room_id=room_id).first()
        if document is None or document.last_number == document.snapshot_number:
            return 0 if document is None else document.snapshot_number
        upto = document.last_number
        doc = store.document_build(
            snapshot=bytes(document.snapshot),
            updates=store.updates_after(room_id, after=document.snapshot_number, upto=upto),
        )
        NotesDocument.objects.filter(pk=document.pk).update(
            snapshot=doc.get_update(), snapshot_number=upto
        )
        NotesUpdate.objects.filter(room_id=room_id, number__lte=upto).delete()
    return upto


def notes_clear(*, room_id: int, user: User) -> int | None:
    """Clear the room's notes (the admin): the text deleted as an edit of the document,
    stored and relayed like any update, then compacted. Open editors apply the
    deletion like anyone's; a client that comes back with the old text cannot bring
    it back, since its content is deleted in the document it merges with (only
    what it wrote without having seen the clear survives). The update's number,
    or None when the notes were empty already."""
    with transaction.atomic():
        NotesDocument.objects.get_or_create(room_id=room_id)
        document = NotesDocument.objects.select_for_update().get(room_id=room_id)
        doc = store.document_build(
            snapshot=bytes(document.snapshot),
            updates=store.updates_after(room_id, after=document.snapshot_number),
        )
        text = doc.get(store.TEXT_NAME, type=Text)
        if len(text) == 0:
            return None
        before = doc.get_state()
        del text[:]
        update = doc.get_update(before)
        number, _ = _next_number(room_id)
        NotesUpdate.objects.create(room_id=room_id, number=number, data=update, author_id=user.pk)
        send_on_commit(
            notes_group_name(room_id),
            events.notes_update(room_id=room_id, number=number, update=update, origin=""),
        )
        NotesDocument.objects.filter(pk=document.pk).update(
            snapshot=doc.get_update(), snapshot_number=number
        )
        NotesUpdate.objects.filter(room_id=room_id, number__lte=number).delete()
    return number


async def notes_awareness_tell(
    layer: Any, *, room_id: int, entries: list[dict[str, Any]], origin: str
) -> None:
    """Tell the notes' other editors, on every worker, who is there and where (not stored)."""
    event = events.notes_awareness(room_id=room_id, entries=entries, origin=origin)
    await deliver(layer, [(notes_group_name(room_id), event)])
