"""Messages and reactions in the admin: moderators edit and delete them, live on open pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from chat.actions.messages import message_delete, message_moderate
from chat.actions.reactions import reaction_moderate
from chat.admin.files import file_link
from chat.domain.inputs import body_clean
from chat.errors import ChatError
from chat.files.attachments import size_words
from chat.models import (
    Message,
    Reaction,
)


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "No"), ("yes", "Yes")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class MessageForm(forms.ModelForm[Message]):
    class Meta:
        model = Message
        fields = ["body"]

    def clean_body(self) -> str:
        """A moderator's body obeys the rules of every other body (empty only beside files)."""
        try:
            files = self.instance.pk is not None and self.instance.attachments.exists()
            return body_clean(self.cleaned_data["body"], may_be_empty=files)
        except ChatError as error:
            raise forms.ValidationError(error.detail, code=error.code) from None


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    form = MessageForm
    list_display = ["room", "number", "author", "short_body", "created", "edited", "deleted_at"]
    list_filter = [DeletedFilter, "room"]
    list_select_related = ["room", "author"]
    search_fields = ["body", "author__username"]
    readonly_fields = [
        "room",
        "number",
        "author",
        "reply_to",
        "created",
        "edited",
        "deleted_at",
        "client_id",
        "files",
    ]
    fields = [
        "room",
        "number",
        "author",
        "reply_to",
        "body",
        "files",
        "created",
        "edited",
        "deleted_at",
        "client_id",
    ]
    date_hierarchy = "created"

    @admin.display(description="files")
    def files(self, message: Message) -> str:
        """The message's attachments: each opens, with its size and type."""
        rows = [
            (file_link(attachment), size_words(attachment.size), attachment.content_type)
            for attachment in message.attachments.all()
        ]
        return format_html_join("\n", "<div>{} ({}, {})</div>", rows) or "—"

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Messages are written by people in rooms, where they get their number.
        return False

    def save_model(self, request: HttpRequest, obj: Message, form: Any, change: bool) -> None:
        """A moderator's edit of a body reaches open pages as `message.edited`."""
        if change and "body" in form.changed_data:
            message_moderate(message_id=obj.pk, body=form.cleaned_data["body"])
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        """Delete keeps the number (docs/protocol-v1.md) and removes it from open pages."""
        if obj.deleted_at is None:
            assert isinstance(request.user, User)
            message_delete(
                room_id=obj.room_id, number=obj.number, user=request.user, moderating=True
            )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        for message in queryset.select_related("room"):
            self.delete_model(request, message)


@admin.register(Reaction)
class ReactionAdmin(admin.ModelAdmin[Reaction]):
    """Reactions, to read and to take away; people add them in rooms."""

    list_display = ["emoji", "user", "message", "created"]
    list_select_related = ["user", "message__room"]
    search_fields = ["user__username", "emoji"]
    raw_id_fields = ["message", "user"]
    readonly_fields = ["message", "user", "emoji", "created"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Reaction) -> None:
        """Taken away from open pages too, as a newer version of the message's reactions."""
        reaction_moderate(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Reaction]) -> None:
        for reaction in queryset:
            self.delete_model(request, reaction)
