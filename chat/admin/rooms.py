"""Rooms in the admin: their members and owners, invites, archiving."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from chat.models import (
    Invite,
    Membership,
    Message,
    Role,
    Room,
)


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
