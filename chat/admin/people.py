"""People in the admin: mutes, bot accounts and their keys, and each user's stored files."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from chat.domain.bots import bot_key_new, bot_key_revoke, bot_user_new
from chat.files.attachments import size_words
from chat.models import (
    Attachment,
    Bot,
    BotKey,
    Mute,
)


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin[Mute]):
    """Muted users read but cannot write; a mute takes effect on their next send."""

    list_display = ["user", "room", "until", "reason", "created"]
    list_filter = ["room"]
    list_select_related = ["user", "room"]
    search_fields = ["user__username", "reason"]
    raw_id_fields = ["user"]
    date_hierarchy = "created"


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


# Django's own user admin, with what each person's files take of their quota.
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
