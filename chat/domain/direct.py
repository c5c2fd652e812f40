"""Direct rooms: one per pair of people, named by their primary keys, made on first use."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from chat.errors import ChatError
from chat.models import Room


def _direct_pair(*, user: User, username: str) -> tuple[User, User]:
    """The two members of a direct room, by primary key; not_found for no such active
    user, and for oneself."""
    other = get_user_model().objects.filter(username=username, is_active=True).first()
    if other is None or other.pk == user.pk:
        raise ChatError("not_found", "no such user")
    low, high = sorted([user, other], key=lambda member: member.pk)
    return low, high


def direct_room_find(*, user: User, username: str) -> Room | None:
    """The direct room of `user` and the active user `username`, if it was made."""
    low, high = _direct_pair(user=user, username=username)
    return Room.objects.filter(slug=f"dm-{low.pk}-{high.pk}").first()


def direct_room_open(*, user: User, username: str) -> Room:
    """The direct room of `user` and the active user `username`, made on first use."""
    low, high = _direct_pair(user=user, username=username)
    slug = f"dm-{low.pk}-{high.pk}"
    with transaction.atomic():
        room, created = Room.objects.get_or_create(
            slug=slug,
            defaults={
                "name": f"{low.get_username()} & {high.get_username()}",
                "kind": Room.Kind.DIRECT,
            },
        )
        if created:
            room.members.add(low, high)
    return room
