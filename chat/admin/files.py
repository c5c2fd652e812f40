"""Uploaded files in the admin: what they are, who sent them, and the message that names each."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from chat.files.attachments import size_words
from chat.models import (
    Attachment,
)


def file_link(attachment: Attachment) -> str:
    """A link that opens the file (moderators may open any: chat.files.attachments)."""
    url = reverse("chat:file", args=[attachment.pk, attachment.name])
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, attachment.name)


class AttachedFilter(admin.SimpleListFilter):
    title = "attached"
    parameter_name = "attached"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "To a message"), ("no", "Not yet (deleted after a day)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(message__isnull=self.value() == "no")
        return queryset


ATTACHMENT_FIELDS = (
    "opened",
    "message_link",
    "uploader",
    "size_shown",
    "content_type",
    "image",
    "width",
    "height",
    "file",
    "thumbnail",
    "created",
)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin[Attachment]):
    """Uploaded files with the messages they belong to. Deleting one deletes its bytes;
    people add them in rooms."""

    list_display = [
        "name",
        "message_link",
        "uploader",
        "size_shown",
        "content_type",
        "image",
        "created",
    ]
    list_filter = [AttachedFilter, "image", "content_type"]
    list_select_related = ["uploader", "message__room"]
    search_fields = ["name", "uploader__username", "content_type"]
    date_hierarchy = "created"
    # An attachment is what was uploaded: the admin shows it and deletes it, never edits it.
    fields = ATTACHMENT_FIELDS
    readonly_fields = ATTACHMENT_FIELDS

    @admin.display(description="message", ordering="message")
    def message_link(self, attachment: Attachment) -> str:
        message = attachment.message
        if message is None:
            return "—"
        url = reverse("admin:chat_message_change", args=[message.pk])
        return format_html('<a href="{}">{}</a>', url, str(message))

    @admin.display(description="size", ordering="size")
    def size_shown(self, attachment: Attachment) -> str:
        return size_words(attachment.size)

    @admin.display(description="file")
    def opened(self, attachment: Attachment) -> str:
        return file_link(attachment)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The change page shows it read-only (the view permission is enough).
        return False
