"""The one gate to a room: every page, API call and socket comes through here."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User

from chat.errors import ChatError
from chat.models import Membership, Role, Room


def room_for_user(*, user: User | AnonymousUser, slug: str) -> Room:
    """The room `slug` if `user` may read it; otherwise `not_found` (or `forbidden`).

    Private and direct rooms do not exist for non-members: they get the same
    answer as a slug that names nothing. Someone not signed in may read only a
    broadcast room open to viewers; any other room asks them to log in.
    """
    room = Room.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if not user.is_authenticated or not user.is_active:
        if room is not None and room.kind == Room.Kind.BROADCAST and room.public_viewing:
            return room
        raise ChatError("forbidden", "log in first")
    if room is None:
        raise ChatError("not_found", "no such room")
    if room.kind in (Room.Kind.PRIVATE, Room.Kind.DIRECT):
        if not room.members.filter(pk=user.pk).exists():
            raise ChatError("not_found", "no such room")
    return room


def may_publish(*, user: User | AnonymousUser, room: Room) -> bool:
    """Whether `user` may post in `room` as a person (broadcast rooms: staff only)."""
    if room.kind != Room.Kind.BROADCAST:
        return True
    return bool(user.is_authenticated and user.is_staff)


def still_readable(
    *,
    user: User | AnonymousUser,
    kind: str,
    public_viewing: bool,
    member_ids: list[int] | None,
) -> bool:
    """Whether `user` may still read a room that changed to this: room_for_user's rule,
    for an open socket told of the change (chat.sockets.moderation)."""
    if not user.is_authenticated:
        return kind == Room.Kind.BROADCAST and public_viewing
    if kind in (Room.Kind.PRIVATE, Room.Kind.DIRECT):
        return member_ids is not None and user.pk in member_ids
    return True


def write_check(
    *, room: Room, user: User | AnonymousUser, publisher: bool = False, verb: str = "post"
) -> None:
    """The one gate of every write to a room: an archived room is read-only
    (room_archived); a broadcast room takes writes from publishers alone (forbidden):
    a bot's key for it or Django code (`publisher`), or staff.

    The author's own state (deactivated, muted) is read in the write's transaction
    (chat.domain.author_state.author_may_write), where it holds from a moderator's commit on.
    """
    if room.archived:
        raise ChatError("room_archived", "this room is archived and read-only")
    if room.kind == Room.Kind.BROADCAST and not (publisher or may_publish(user=user, room=room)):
        raise ChatError("forbidden", f"only publishers {verb} in a broadcast room")


def role_of(*, user: User | AnonymousUser, room: Room) -> str | None:
    """The user's role in the room: "owner", "member", or None for someone not in it."""
    if not user.is_authenticated:
        return None
    found = Membership.objects.filter(room=room, user_id=user.pk).values_list("role", flat=True)
    return found.first()


def create_check(*, user: User | AnonymousUser) -> None:
    """Whether `user` may create a room: anyone signed in, or staff alone when
    CHAT_ROOM_CREATORS is "staff" (forbidden)."""
    if not user.is_authenticated or not user.is_active:
        raise ChatError("forbidden", "log in first")
    if settings.CHAT_ROOM_CREATORS == "staff" and not user.is_staff:
        raise ChatError("forbidden", "only staff create rooms on this site")


def manage_check(*, user: User | AnonymousUser, room: Room, role: str | None = None) -> None:
    """The gate of every change to a room and its members: its owners, and staff
    (forbidden for anyone else). A direct conversation has no owners: nobody
    manages it here. `role` is the user's, when the caller has read it already."""
    if room.kind == Room.Kind.DIRECT:
        raise ChatError("forbidden", "a direct conversation has no owners")
    if user.is_authenticated and user.is_staff and user.is_active:
        return
    if role is None:
        role = role_of(user=user, room=room)
    if role != Role.OWNER:
        raise ChatError("forbidden", "only the room's owners may do that")
