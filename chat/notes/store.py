"""A room's notes in the database, read: the snapshot, the updates after it, the text.

The writes (append, compact, clear) are chat.notes.actions. Every function
here is sync, for the database thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import Doc, Text

from chat.models import NotesDocument, NotesUpdate

# The Y.Text of a room's document that the page (and any client) edits.
TEXT_NAME = "notes"

Numbered = list[tuple[int, bytes]]


@dataclass(frozen=True)
class Since:
    """What a worker lacks of a room's notes: the snapshot (None when the worker's copy
    already has what it holds) and the updates after, in number order."""

    snapshot: bytes | None
    snapshot_number: int
    updates: Numbered


def updates_after(room_id: int, *, after: int, upto: int | None = None) -> Numbered:
    """The stored updates numbered after `after` (up to `upto`), in order."""
    rows = NotesUpdate.objects.filter(room_id=room_id, number__gt=after)
    if upto is not None:
        rows = rows.filter(number__lte=upto)
    return [
        (number, bytes(data))
        for number, data in rows.order_by("number").values_list("number", "data")
    ]


def notes_since(*, room_id: int, after: int) -> Since:
    """What a copy that has every update up to `after` lacks (after=0: everything).

    Updates folded into the snapshot are deleted: a copy behind the snapshot gets
    it (merging a document into one that has part of it is safe: Yjs ignores what
    it has).
    """
    document = (
        NotesDocument.objects.filter(room_id=room_id).values("snapshot", "snapshot_number").first()
    )
    if document is None:
        return Since(snapshot=None, snapshot_number=0, updates=[])
    snapshot_number = int(document["snapshot_number"])
    if after >= snapshot_number:
        return Since(
            snapshot=None,
            snapshot_number=snapshot_number,
            updates=updates_after(room_id, after=after),
        )
    return Since(
        snapshot=bytes(document["snapshot"]),
        snapshot_number=snapshot_number,
        updates=updates_after(room_id, after=snapshot_number),
    )


def document_build(*, snapshot: bytes, updates: Numbered) -> Doc:
    """A document from a snapshot and the updates after it."""
    doc: Doc = Doc()
    doc.get(TEXT_NAME, type=Text)
    if snapshot:
        doc.apply_update(snapshot)
    for _, update in updates:
        doc.apply_update(update)
    return doc


def notes_text(*, room_id: int) -> str:
    """The room's notes as text, as stored (the admin)."""
    since = notes_since(room_id=room_id, after=0)
    doc = document_build(snapshot=since.snapshot or b"", updates=since.updates)
    return str(doc.get(TEXT_NAME, type=Text))
