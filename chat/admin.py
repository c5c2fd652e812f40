"""The admin runs rooms and moderates messages; deletions reach open pages live."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from chat.actions.messages import message_delete, message_moderate
from chat.actions.notes import notes_clear
from chat.actions.reactions import reaction_moderate
from chat.domain.bots import bot_key_new, bot_key_revoke, bot_user_new
from chat.domain.inputs import body_clean
from chat.errors import ChatError
from chat.files.attachments import size_words
from chat.models import (
    Attachment,
    Bot,
    BotKey,
    Invite,
    Membership,
    Message,
    Mute,
    NotesDocument,
    Reaction,
    Role,
    Room,
)
from chat.notes.store import notes_text


class MembershipInline(admin.TabularInline[Membership, Room]):
    """Who is in the room, and who owns it: rows added or deleted here reach open
    pages as the owners' changes do (chat.sockets.moderation)."""

    model = Membership
    extra = 1
    raw_id_fields = ["user"]
    fields = ["user", "role", "created"]
    readonly_fields = ["created"]


class InviteInline(admin.TabularInline[Invite, Room]):
    """The room's invite links (their codes are shown to owners in the room's page only)."""

    model = Invite
    extra = 0
    fields = ["created_by", "created", "expires", "max_uses", "uses", "revoked"]
    readonly_fields = ["created_by", "created", "uses"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # made by owners (chat.actions.membership.invite_create)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin[Room]):
    list_display = [
        "name",
        "slug",
        "kind",
        "archived",
        "owner_names",
        "member_count",
        "message_count",
        "created",
    ]
    list_filter = ["kind", "archived", "live_comments"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, InviteInline]
    readonly_fields = ["created", "last_message_number", "state", "state_version"]
    actions = ["archive", "unarchive"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        # One counting subquery each: a join of members x messages would
        # multiply rows for big rooms.
        def count_of(rows: QuerySet[Any]) -> Coalesce:
            counted = rows.order_by().values("room_id").annotate(total=Count("*")).values("total")
            return Coalesce(Subquery(counted), Value(0))

        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=count_of(Membership.objects.filter(room_id=OuterRef("pk"))),
                message_total=count_of(Message.objects.visible().filter(room_id=OuterRef("pk"))),
            )
            .prefetch_related(
                Prefetch(
                    "memberships",
                    Membership.objects.filter(role=Role.OWNER)
                    .select_related("user")
                    .order_by("user__username"),
                    to_attr="owner_memberships",
                )
            )
        )

    @admin.display(description="owners")
    def owner_names(self, room: Any) -> str:
        return ", ".join(m.user.get_username() for m in room.owner_memberships) or "—"

    @admin.display(description="members", ordering="member_total")
    def member_count(self, room: Any) -> int:
        return int(room.member_total)

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, room: Any) -> int:
        return int(room.message_total)

    @admin.action(description="Archive the selected rooms (read-only)")
    def archive(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        count = self.set_archived(queryset, archived=True)
        self.message_user(request, f"{count} room(s) archived.", messages.SUCCESS)

    @admin.action(description="Unarchive the selected rooms")
    def unarchive(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        count = self.set_archived(queryset, archived=False)
        self.message_user(request, f"{count} room(s) unarchived.", messages.SUCCESS)

    @staticmethod
    def set_archived(queryset: QuerySet[Room], *, archived: bool) -> int:
        """Saved one by one, not updated in bulk: open sockets hear of each
        (chat.sockets.moderation)."""
        rooms = list(queryset.exclude(archived=archived))
        for room in rooms:
            room.archived = archived
            room.save(update_fields=["archived"])
        return len(rooms)


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


def file_link(attachment: Attachment) -> str:
    """A link that opens the file (moderators may open any: chat.files.attachments)."""
    url = reverse("chat:file", args=[attachment.pk, attachment.name])
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, attachment.name)


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


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin[Mute]):
    """Muted users read but cannot write; a mute takes effect on their next send."""

    list_display = ["user", "room", "until", "reason", "created"]
    list_filter = ["room"]
    list_select_related = ["user", "room"]
    search_fields = ["user__username", "reason"]
    raw_id_fields = ["user"]
    date_hierarchy = "created"


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


class BotForm(forms.ModelForm[Bot]):
    """A new bot: its account is made with the name given, with no password."""

    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="The name its posts appear under. No person's account may have it.",
    )

    class Meta:
        model = Bot
        fields: list[str] = []

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("An account of this name exists already.", code="taken")
        return username


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin[Bot]):
    """Bot accounts: they publish with keys and never log in. Remove one by deleting its
    account (Users): a bot never becomes a person's account."""

    list_display = ["user", "key_count", "created"]
    search_fields = ["user__username"]
    list_select_related = ["user"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = BotForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "created"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["user", "created"] if obj is not None else ["username"]

    @admin.display(description="keys")
    def key_count(self, bot: Bot) -> int:
        return BotKey.objects.filter(user_id=bot.pk, revoked__isnull=True).count()

    def save_model(self, request: HttpRequest, obj: Bot, form: Any, change: bool) -> None:
        if not change:
            # In the admin's transaction: the account and its mark are made together.
            obj.user = bot_user_new(form.cleaned_data["username"])
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BotKey)
class BotKeyAdmin(admin.ModelAdmin[BotKey]):
    """Bots' API keys: made here or with `manage.py chat_bot_key`; shown once, in the page
    that answers the form (never in a cookie), then only revoked."""

    list_display = ["__str__", "user", "name", "room_list", "created", "last_used", "revoked"]
    list_filter = ["revoked"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name", "prefix"]
    filter_horizontal = ["rooms"]
    readonly_fields = ["prefix", "created", "last_used"]
    actions = ["revoke"]

    @admin.display(description="rooms")
    def room_list(self, key: BotKey) -> str:
        return ", ".join(room.slug for room in key.rooms.all())

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            # Keys are for bots alone: a person's account is not offered, nor accepted.
            kwargs["queryset"] = get_user_model().objects.filter(chat_bot__isnull=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: BotKey, form: Any, change: bool) -> None:
        shown = None if change else bot_key_new(obj)
        super().save_model(request, obj, form, change)
        if shown is not None:
            request.chat_key_shown = shown  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: BotKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new key, in this page's body only, once."""
        shown = getattr(request, "chat_key_shown", None)
        if shown is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/chat/botkey/shown.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "The new key",
                "key": obj,
                "shown": shown,
                "changelist": reverse("admin:chat_botkey_changelist"),
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[BotKey]) -> None:
        for key in queryset:
            bot_key_revoke(key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)


admin.site.unregister(User)


@admin.register(User)
class ChatUserAdmin(UserAdmin):
    """Django's own, with what each person's files take of CHAT_UPLOAD_QUOTA_BYTES."""

    list_display = ["username", "email", "first_name", "last_name", "is_staff", "files_stored"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        stored = Attachment.objects.stored_bytes_of_each_uploader()
        return super().get_queryset(request).annotate(files_stored=Coalesce(stored, Value(0)))

    @admin.display(description="files", ordering="files_stored")
    def files_stored(self, user: User) -> str:
        """Their files' bytes (with thumbnails) and the quota, linking to the files."""
        used = int(getattr(user, "files_stored", 0))
        url = reverse("admin:chat_attachment_changelist") + f"?uploader__id__exact={user.pk}"
        quota = settings.CHAT_UPLOAD_QUOTA_BYTES
        return format_html('<a href="{}">{} of {}</a>', url, size_words(used), size_words(quota))


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
