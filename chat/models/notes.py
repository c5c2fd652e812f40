"""A room's shared notes (chat/notes/): the snapshot and the updates after it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.models.rooms import Room


class NotesDocument(models.Model):
    """A room's shared notes (chat/notes/): a snapshot and the count of its updates.

    Updates are numbered 1, 2, 3 ... per room, allocated under a lock on this
    row (chat.notes.actions.notes_append). `snapshot` holds the document as of
    update `snapshot_number` (a Yjs update, v1 encoding); the updates after it
    are `NotesUpdate` rows. A room has no row until its notes are first edited.
    """

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="notes")
    last_number = models.PositiveBigIntegerField(default=0)
    snapshot = models.BinaryField(default=b"")
    snapshot_number = models.PositiveBigIntegerField(default=0)
    changed = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "room's notes"
        verbose_name_plural = "rooms' notes"

    def __str__(self) -> str:
        return f"notes of {self.room_id}"


class NotesUpdate(models.Model):
    """One accepted update of a room's notes (a Yjs update), stored before anyone hears of it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="notes_updates")
    number = models.PositiveBigIntegerField()
    data = models.BinaryField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "number"]
        constraints = [
            models.UniqueConstraint(fields=["room", "number"], name="notes_update_room_number"),
        ]

    def __str__(self) -> str:
        return f"notes update {self.number} of {self.room_id}"
