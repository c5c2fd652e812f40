"""What each reader has yet to read in each room, and how they want to be told of it.

The lobby, `/api/rooms/` and every page's own socket (`/ws/me/`, chat/sockets/me.py)
read the same entries: per room, the unread messages (others' messages after
the reader's mark), the mentions of the reader among them, and the reader's
notification setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Max, OuterRef, Subquery

from chat.domain.access import room_for_user
from chat.errors import ChatError
from chat.models import Membership, Message, Notify, NotifySetting, Room, notify_default

# Autocomplete answers at most this many names.
MEMBERS_MAX = 10


@dataclass(frozen=True)
class RoomEntry:
    """A room as one reader sees it in a list."""

    room: Room
    title: str
    unread: int
    mentions: int
    notify: str
    last_read: int
    # The room's newest message when the counts were read (in the same query).
    last_id: int
    # The reader's role in the room: "owner", "member", or None (not in it).
    role: str | None = None


def room_entries(user: User, *, room_ids: list[int] | None = None) -> list[RoomEntry]:
    """The rooms `user` can see (of `room_ids`, if given), titled for them, with counts."""
    rooms = Room.objects.visible_to(user)
    if room_ids is not None:
        rooms = rooms.filter(pk__in=room_ids)
    role = Membership.objects.filter(room=OuterRef("pk"), user_id=user.pk).values("role")[:1]
    found: list[Room] = list(rooms.with_attention(user).annotate(role=Subquery(role)))
    titles = room_titles(found, user)
    return [
        RoomEntry(
            room=room,
            title=titles[room.pk],
            unread=room.unread,  # type: ignore[attr-defined]
            mentions=room.mentions,  # type: ignore[attr-defined]
            notify=room.notify or notify_default(room.kind),  # type: ignore[attr-defined]
            last_read=room.last_read,  # type: ignore[attr-defined]
            last_id=room.last_message_number,
            role=room.role,  # type: ignore[attr-defined]
        )
        for room in found
    ]


def room_entry(user: User, room_id: int) -> RoomEntry | None:
    """One room's entry, or None when the user may no longer see it."""
    entries = room_entries(user, room_ids=[room_id])
    return entries[0] if entries else None


def notify_of(user: User, room: Room) -> str:
    """What the reader is told of the room: their setting, or the room's default."""
    stored = NotifySetting.objects.filter(user=user, room=room).values_list("notify", flat=True)
    return stored.first() or notify_default(room.kind)


def room_titles(rooms: list[Room], user: Any) -> dict[int, str]:
    """Each room's title for `user` (room pk -> title), in at most one query.

    A direct room is titled by the other person's name.
    """
    titles = {room.pk: room.name for room in rooms}
    direct_ids = [room.pk for room in rooms if room.kind == Room.Kind.DIRECT]
    if direct_ids:
        username_field = get_user_model().USERNAME_FIELD
        titles.update(
            Membership.objects.filter(room_id__in=direct_ids)
            .exclude(user_id=user.pk)
            .values_list("room_id", f"user__{username_field}")
        )
    return titles


def notify_set(*, user: User, room: Room, notify: object) -> str:
    """Store the reader's notification setting for a room; the setting."""
    if notify not in Notify.values:
        choices = ", ".join(Notify.values)
        raise ChatError("bad_request", f"notify must be one of {choices}")
    NotifySetting.objects.update_or_create(user=user, room=room, defaults={"notify": notify})
    return str(notify)


def room_members(*, user: User, slug: str, prefix: object) -> list[str]:
    """Usernames a mention in the room may complete to, starting with `prefix`.

    A private or direct room offers its members; a public room, where every
    user may be mentioned, those who have written in it, most recent first.
    """
    room = room_for_user(user=user, slug=slug)
    if not isinstance(prefix, str) or len(prefix) > 150:
        raise ChatError("bad_request", "q must be at most 150 characters")
    users = get_user_model().objects.filter(is_active=True, username__startswith=prefix)
    if room.kind == Room.Kind.PUBLIC:
        recent = (
            Message.objects.filter(room=room, author__in=users)
            .values("author__username")
            .annotate(last=Max("number"))
            .order_by("-last")[:MEMBERS_MAX]
        )
        return [row["author__username"] for row in recent]
    members = users.filter(chat_rooms=room).order_by("username")[:MEMBERS_MAX]
    return [member.get_username() for member in members]
