"""Rooms' shared notes in the admin: read them as text, clear them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from chat.models import (
    NotesDocument,
)
from chat.notes.actions import notes_clear
from chat.notes.store import notes_text


@admin.register(NotesDocument)
class NotesDocumentAdmin(admin.ModelAdmin[NotesDocument]):
    """Each room's shared notes, as text; clearing them is an edit every open editor gets."""

    list_display = ["room", "last_number", "snapshot_number", "changed"]
    list_select_related = ["room"]
    search_fields = ["room__name", "room__slug"]
    fields = ["room", "text", "last_number", "snapshot_number", "changed"]
    readonly_fields = ["room", "text", "last_number", "snapshot_number", "changed"]
    actions = ["clear"]

    @admin.display(description="text")
    def text(self, document: NotesDocument) -> str:
        return notes_text(room_id=document.room_id)

    @admin.action(description="Clear the selected rooms' notes (open editors see them cleared)")
    def clear(self, request: HttpRequest, queryset: QuerySet[NotesDocument]) -> None:
        assert isinstance(request.user, User)
        cleared = [
            document.room_id
            for document in queryset
            if notes_clear(room_id=document.room_id, user=request.user) is not None
        ]
        self.message_user(request, f"Cleared the notes of {len(cleared)} room(s).")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a room's notes begin with its first edit

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the numbering must go on: clear instead
