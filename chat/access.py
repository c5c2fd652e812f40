"""The one gate to a room: every page, API call and socket comes through here."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from chat.errors import ChatError
from chat.models import Room


def room_for_user(*, user: User | AnonymousUser, slug: str) -> Room:
    """The room `slug` if `user` may read it; otherwise `not_found`.

    Private and direct rooms do not exist for non-members: they get the same
    answer as a slug that names nothing.
    """
    if not user.is_authenticated or not user.is_active:
        raise ChatError("forbidden", "log in first")
    room = Room.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if room is None:
        raise ChatError("not_found", "no such room")
    if room.kind != Room.Kind.PUBLIC and not room.members.filter(pk=user.pk).exists():
        raise ChatError("not_found", "no such room")
    return room
