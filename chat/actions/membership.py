"""Rooms that people make and run: create, change, members, joining, leaving, invites.

Each function checks the gate (chat.domain.access.create_check or manage_check),
writes in one transaction and lets the room's and the memberships' receivers
(chat.sockets.moderation) send the events on commit: whatever way a room or a
membership changes (these actions, the admin), open pages hear of it the same
way. Nothing changes when a check fails.

Rules of ownership:
- whoever creates a room owns it; owners make other members owners;
- owners (and staff) rename, describe, archive and unarchive the room, add and
  remove members, change roles, and make and revoke invite links;
- anyone signed in joins a public room; an invite link lets anyone in;
- anyone leaves any room, except its last owner while the room is not archived
  (last_owner): another member must be made owner first, or the room archived.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from chat.domain.access import create_check, manage_check, role_of
from chat.errors import ChatError
from chat.models import SLUG_PATTERN, Invite, Membership, Role, Room, slug_validator

NAME_MAX = Room._meta.get_field("name").max_length or 100
DESCRIPTION_MAX = 1000
SLUG_MAX = 50
# An invite lasts from a minute to a year; at most this many uses.
INVITE_SECONDS_MIN = 60
INVITE_SECONDS_MAX = 365 * 24 * 3600
INVITE_USES_MAX = 10_000
# Rooms people create are public or private; direct and broadcast rooms are made otherwise.
CREATABLE_KINDS = (Room.Kind.PUBLIC, Room.Kind.PRIVATE)
# Paths beside /rooms/<slug>/ that a slug must not shadow.
RESERVED_SLUGS = frozenset({"new"})

UNSET: Any = object()


def name_clean(name: object) -> str:
    """A room's name: text of 1 to NAME_MAX characters once trimmed (empty, too_long)."""
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise ChatError("bad_request", "name must be a string")
    name = " ".join(name.split())
    if not name:
        raise ChatError("empty", "a room needs a name")
    if len(name) > NAME_MAX:
        raise ChatError("too_long", f"a room's name has at most {NAME_MAX} characters")
    return name


def description_clean(description: object) -> str:
    """A room's description: text of at most DESCRIPTION_MAX characters (too_long)."""
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ChatError("bad_request", "description must be a string")
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        raise ChatError(
            "too_long", f"a room's description has at most {DESCRIPTION_MAX} characters"
        )
    return description


def slug_from_name(name: str) -> str:
    """A free slug made from the name (-2, -3 ... when taken); "room" if nothing is left of it."""
    base = slugify(name)[:SLUG_MAX].strip("-") or "room"
    if base in RESERVED_SLUGS:
        base = f"{base}-room"
    taken = set(
        Room.objects.filter(slug__startswith=base[: SLUG_MAX - 4]).values_list("slug", flat=True)
    )
    if base not in taken:
        return base
    for number in range(2, 10_000):
        suffix = f"-{number}"
        candidate = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
    return f"{base[: SLUG_MAX - 9]}-{secrets.token_hex(4)}"


def slug_check(slug: object) -> str:
    """A slug given by its creator: SLUG_PATTERN (bad_request), free (conflict)."""
    if not isinstance(slug, str):
        raise ChatError("bad_request", "slug must be a string")
    try:
        slug_validator(slug)
    except Exception:
        raise ChatError(
            "bad_request",
            f"a slug is 1 to 50 lowercase letters, digits or hyphens ({SLUG_PATTERN})",
        ) from None
    if slug in RESERVED_SLUGS or Room.objects.filter(slug=slug).exists():
        raise ChatError("conflict", f"the slug {slug!r} is taken")
    return slug


def room_create(
    *,
    user: User,
    name: object,
    kind: object = Room.Kind.PUBLIC,
    description: object = "",
    slug: object = None,
) -> Room:
    """Create a public or private room owned by `user`; the room.

    Refused: not allowed by CHAT_ROOM_CREATORS (forbidden), a name empty (empty)
    or too long (too_long), another kind (bad_request), a slug given that is
    malformed (bad_request) or taken (conflict). With no slug, one is made from
    the name, free.
    """
    create_check(user=user)
    name = name_clean(name)
    if kind not in CREATABLE_KINDS:
        raise ChatError("bad_request", "kind must be public or private")
    description = description_clean(description)
    chosen = slug_check(slug) if slug is not None else slug_from_name(name)
    try:
        with transaction.atomic():
            room = Room.objects.create(
                name=name, slug=chosen, kind=str(kind), description=description
            )
            Membership.objects.create(room=room, user=user, role=Role.OWNER)
    except IntegrityError:
        # Taken between the check and the write.
        raise ChatError("conflict", f"the slug {chosen!r} is taken") from None
    return room


def room_update(
    *,
    user: User,
    room: Room,
    name: object = UNSET,
    description: object = UNSET,
    archived: object = UNSET,
) -> Room:
    """Rename, describe, archive or unarchive a room (owners and staff); the room.

    Open pages get a `room` frame, the lobbies the new entry (chat.sockets.moderation).
    """
    manage_check(user=user, room=room)
    changes: dict[str, Any] = {}
    if name is not UNSET:
        changes["name"] = name_clean(name)
    if description is not UNSET:
        changes["description"] = description_clean(description)
    if archived is not UNSET:
        if not isinstance(archived, bool):
            raise ChatError("bad_request", "archived must be true or false")
        changes["archived"] = archived
    if not changes:
        return room
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changes))
    return locked


def person_find(username: object) -> User:
    """An active person (not a bot) by username, or not_found."""
    if not isinstance(username, str) or not username:
        raise ChatError("bad_request", "username must be a string")
    person = (
        get_user_model()
        .objects.filter(username=username, is_active=True, chat_bot__isnull=True)
        .first()
    )
    if person is None:
        raise ChatError("not_found", f"nobody is called {username!r}")
    return person


def member_add(*, user: User, room: Room, username: object) -> Membership:
    """Add a person to the room as a member (owners and staff); their pages hear of it.

    Refused: nobody by that name (not_found), someone in it already (conflict).
    """
    manage_check(user=user, room=room)
    person = person_find(username)
    try:
        with transaction.atomic():
            return Membership.objects.create(room=room, user=person, role=Role.MEMBER)
    except IntegrityError:
        raise ChatError("conflict", f"{person.get_username()} is in this room already") from None


def owners_left(room: Room, *, without: int) -> int:
    """How many owners the room keeps if user `without` stops owning it (its row locked)."""
    return Membership.objects.filter(room=room, role=Role.OWNER).exclude(user_id=without).count()


def member_role_set(*, user: User, room: Room, username: object, role: object) -> Membership:
    """Make a member an owner, or an owner a member (owners and staff).

    Refused: a role other than owner or member (bad_request), someone not in the
    room (not_found), the last owner made a member while the room is not
    archived (last_owner).
    """
    manage_check(user=user, room=room)
    if role not in Role.values:
        raise ChatError("bad_request", "role must be owner or member")
    person = person_find(username)
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        membership = Membership.objects.filter(room=locked, user=person).first()
        if membership is None:
            raise ChatError("not_found", f"{person.get_username()} is not in this room")
        if membership.role == role:
            return membership
        if (
            role == Role.MEMBER
            and not locked.archived
            and not owners_left(locked, without=person.pk)
        ):
            raise ChatError(
                "last_owner", "a room keeps one owner: make someone else an owner first"
            )
        membership.role = str(role)
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, user: User, room: Room, username: object) -> None:
    """Take a person out of the room: owners and staff anyone, anyone themselves (leaving).

    Their sockets to a private room close (4404) and their pages drop it; in a
    public room they stay readers, no longer members. Refused: someone not in
    the room (not_found), the last owner while the room is not archived
    (last_owner), anyone else's removal by a non-owner (forbidden).
    """
    person = person_find(username)
    if person.pk != user.pk:
        manage_check(user=user, room=room)
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        membership = Membership.objects.filter(room=locked, user=person).first()
        if membership is None:
            raise ChatError("not_found", f"{person.get_username()} is not in this room")
        if (
            membership.role == Role.OWNER
            and not locked.archived
            and not owners_left(locked, without=person.pk)
        ):
            raise ChatError(
                "last_owner",
                "the last owner may not leave: make someone else an owner first,"
                " or archive the room",
            )
        membership.delete()


def room_leave(*, user: User, room: Room) -> None:
    """Leave a room (member_remove of oneself)."""
    member_remove(user=user, room=room, username=user.get_username())


def room_join(*, user: User, room: Room) -> Membership:
    """Join a public room as a member. Refused: a room that is not public (forbidden),
    an archived one (room_archived), a room one is in already (conflict)."""
    if room.kind != Room.Kind.PUBLIC:
        raise ChatError("forbidden", "only public rooms are joined freely: ask an owner")
    if room.archived:
        raise ChatError("room_archived", "this room is archived and read-only")
    try:
        with transaction.atomic():
            return Membership.objects.create(room=room, user=user, role=Role.MEMBER)
    except IntegrityError:
        raise ChatError("conflict", "you are in this room already") from None


def whole_number(value: object, *, name: str, low: int, high: int) -> int | None:
    """An optional whole number within [low, high] (bad_request)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ChatError("bad_request", f"{name} must be a whole number from {low} to {high}")
    return value


def invite_create(
    *, user: User, room: Room, expires_in: object = None, max_uses: object = None
) -> Invite:
    """An invite link to the room (owners and staff): it may end after `expires_in`
    seconds and after `max_uses` joins. Refused: an archived room (room_archived),
    numbers out of range (bad_request)."""
    manage_check(user=user, room=room)
    seconds = whole_number(
        expires_in, name="expires_in", low=INVITE_SECONDS_MIN, high=INVITE_SECONDS_MAX
    )
    uses = whole_number(max_uses, name="max_uses", low=1, high=INVITE_USES_MAX)
    if room.archived:
        raise ChatError("room_archived", "this room is archived: nobody joins it")
    with transaction.atomic():
        return Invite.objects.create(
            room=room,
            code=secrets.token_urlsafe(18),
            created_by=user,
            expires=None if seconds is None else timezone.now() + timedelta(seconds=seconds),
            max_uses=uses,
        )


def invite_revoke(*, user: User, room: Room, code: object) -> Invite:
    """Revoke one of the room's invites (owners and staff); revoking twice changes nothing."""
    manage_check(user=user, room=room)
    with transaction.atomic():
        invite = Invite.objects.select_for_update().filter(room=room, code=code).first()
        if invite is None:
            raise ChatError("not_found", "no such invite to this room")
        if invite.revoked is None:
            invite.revoked = timezone.now()
            invite.save(update_fields=["revoked"])
    return invite


def invite_problem(invite: Invite) -> str | None:
    """Why an invite lets nobody in any more, or None while it does."""
    if invite.revoked is not None:
        return "this invite was revoked"
    if invite.expires is not None and invite.expires <= timezone.now():
        return "this invite has expired"
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return "this invite has been used up"
    return None


def invite_find(code: object) -> Invite:
    """The invite of this code, whatever its state (not_found: no such code)."""
    invite = (
        Invite.objects.select_related("room").filter(code=code).first()
        if isinstance(code, str)
        else None
    )
    if invite is None:
        raise ChatError("not_found", "no such invite")
    return invite


def invite_accept(*, user: User, code: object) -> Room:
    """Join the room of an invite; its room. The invite counts one use.

    Refused: no such code (not_found), revoked, expired or used up
    (invite_invalid: ask an owner for a new link), an archived room
    (room_archived), someone in the room already (conflict; no use counted).
    """
    if not user.is_authenticated or not user.is_active:
        raise ChatError("forbidden", "log in first")
    if not isinstance(code, str):
        raise ChatError("not_found", "no such invite")
    try:
        with transaction.atomic():
            invite = (
                Invite.objects.select_for_update().select_related("room").filter(code=code).first()
            )
            if invite is None:
                raise ChatError("not_found", "no such invite")
            problem = invite_problem(invite)
            if problem is not None:
                raise ChatError("invite_invalid", f"{problem}: ask an owner for a new link")
            room = invite.room
            if room.archived:
                raise ChatError("room_archived", "this room is archived: nobody joins it")
            if role_of(user=user, room=room) is not None:
                raise ChatError("conflict", "you are in this room already")
            Membership.objects.create(room=room, user=user, role=Role.MEMBER)
            invite.uses += 1
            invite.save(update_fields=["uses"])
    except IntegrityError:
        raise ChatError("conflict", "you are in this room already") from None
    return room
