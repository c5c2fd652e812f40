"""Every write of the chat: sync, typed, keyword-only, one transaction each.

Consumers call these once each through `database_sync_to_async`; the admin and
views call them directly. Refusals raise `ChatError` with a protocol code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from chat.errors import ChatError
from chat.models import Message, Mute, ReadState, Room

# Ids beyond what the database stores are answered as "no such message".
MAX_NUMBER = 2**63 - 1
_SURROGATES_OR_NUL = re.compile("[\x00\ud800-\udfff]")
# The characters of Unicode's White_Space property. (str.strip() would also
# remove U+001C..U+001F, which are not white space.)
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def text_check(value: str, *, field: str) -> None:
    """Refuse NUL and unpaired surrogates, which JSON peers and databases reject."""
    if _SURROGATES_OR_NUL.search(value):
        raise ChatError("bad_request", f"{field} contains NUL or an unpaired surrogate")


def body_clean(body: object) -> str:
    """Validate a message body: a string, 1..CHAT_BODY_MAX code points once stripped."""
    if not isinstance(body, str):
        raise ChatError("bad_request", "body must be a string")
    text_check(body, field="body")
    body = body.strip(WHITE_SPACE)
    if not body:
        raise ChatError("empty", "the message is empty")
    if len(body) > settings.CHAT_BODY_MAX:
        raise ChatError("too_long", f"a message has at most {settings.CHAT_BODY_MAX} characters")
    return body


def client_id_clean(client_id: object) -> str | None:
    """Validate an optional client_id: absent/null, or a string of 1..64 characters."""
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= settings.CHAT_CLIENT_ID_MAX:
        limit = settings.CHAT_CLIENT_ID_MAX
        raise ChatError("bad_request", f"client_id must be a string of 1 to {limit} characters")
    text_check(client_id, field="client_id")
    return client_id


def _author_may_write(*, author_id: int, room_id: int) -> None:
    """Refuse a deactivated author (closing the socket, 4403) and a muted one (`muted`).

    Read in the write's transaction, so that a moderator's decision holds from
    its commit on, whatever the open sockets have heard yet.
    """
    state = (
        get_user_model()
        .objects.filter(pk=author_id)
        .annotate(muted_until=Subquery(_mute_end(room_id=room_id)), muted=Exists(_mutes(room_id)))
        .values("is_active", "muted", "muted_until")
        .first()
    )
    if state is None or not state["is_active"]:
        raise ChatError("forbidden", "this account is deactivated", close_code=4403)
    if state["muted"]:
        until = state["muted_until"]
        detail = "you are muted in this room"
        if until is not None:
            detail += f" until {until.isoformat(timespec='minutes').replace('+00:00', 'Z')}"
        raise ChatError("muted", detail)


def _mutes(room_id: int) -> QuerySet[Mute]:
    return Mute.objects.active(room_id=room_id).filter(user_id=OuterRef("pk"))


def _mute_end(*, room_id: int) -> QuerySet[Mute, Any]:
    """The latest end of the user's mutes in force; NULL while one has no end."""
    return _mutes(room_id).order_by(F("until").desc(nulls_first=True)).values("until")[:1]


def _room_for_write(room_id: int) -> Room:
    """Lock the room row; refuse writes to archived rooms."""
    room = Room.objects.select_for_update().get(pk=room_id)
    if room.archived:
        raise ChatError("room_archived", "this room is archived and read-only")
    return room


def message_create(
    *, room_id: int, author: User, body: str, client_id: str | None
) -> tuple[Message, bool]:
    """Store a message under the next number of its room; (message, created).

    A client_id the author already used in this room returns the stored message
    and False: a resend is stored once. The room row stays locked until commit,
    so numbers are gapless and committed in order.
    """
    body = body_clean(body)
    client_id = client_id_clean(client_id)
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room_id)
        if client_id is not None:
            existing = (
                Message.objects.select_related("room", "author")
                .filter(room_id=room_id, author_id=author.pk, client_id=client_id)
                .first()
            )
            # Checked before `archived`: a resend of a message stored before the
            # room was archived is acknowledged with it, not refused.
            if existing is not None:
                return existing, False
        _author_may_write(author_id=author.pk, room_id=room_id)
        if room.archived:
            raise ChatError("room_archived", "this room is archived and read-only")
        number = room.last_message_number + 1
        Room.objects.filter(pk=room_id).update(last_message_number=number)
        room.last_message_number = number
        message = Message.objects.create(
            room=room, number=number, author=author, body=body, client_id=client_id
        )
    return message, True


def _message_for_write(*, room_id: int, number: object) -> Message:
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ChatError("bad_request", "id must be a whole number >= 0")
    if not 1 <= number <= MAX_NUMBER:
        raise ChatError("not_found", "no such message")
    message = (
        Message.objects.select_related("room", "author")
        .filter(room_id=room_id, number=number, deleted_at__isnull=True)
        .first()
    )
    if message is None:
        raise ChatError("not_found", "no such message")
    return message


def message_edit(*, room_id: int, number: object, user: User, body: object) -> Message:
    """Replace a message's body; the author only."""
    body = body_clean(body)
    with transaction.atomic():
        _room_for_write(room_id)
        message = _message_for_write(room_id=room_id, number=number)
        if message.author_id != user.pk:
            raise ChatError("forbidden", "only the author may edit a message")
        _author_may_write(author_id=user.pk, room_id=room_id)
        message.body = body
        message.edited = True
        message.save(update_fields=["body", "edited"])
    return message


def message_delete(
    *, room_id: int, number: object, user: User, moderating: bool = False
) -> Message:
    """Delete a message, keeping its number; the author or staff.

    `moderating` is the admin's path: it may delete in archived rooms too.
    """
    with transaction.atomic():
        if not moderating:
            _room_for_write(room_id)
        message = _message_for_write(room_id=room_id, number=number)
        if message.author_id != user.pk and not getattr(user, "is_staff", False):
            raise ChatError("forbidden", "only the author or staff may delete a message")
        message.deleted_at = timezone.now()
        message.save(update_fields=["deleted_at"])
    return message


def room_read(*, room: Room, user: User, number: object) -> int:
    """Mark the room read up to `number` (never backwards); the new mark."""
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ChatError("bad_request", "id must be a whole number >= 0")
    last = Room.objects.values_list("last_message_number", flat=True).get(pk=room.pk)
    number = min(number, last)
    state, _ = ReadState.objects.get_or_create(user_id=user.pk, room_id=room.pk)
    if number > state.last_read_number:
        # Conditional update: two sockets marking at once never move it back.
        ReadState.objects.filter(pk=state.pk, last_read_number__lt=number).update(
            last_read_number=number
        )
        return number
    return state.last_read_number


@dataclass(frozen=True)
class Snapshot:
    """What a socket sends right after `welcome`: the replay of a resume."""

    last_number: int
    messages: list[Message]
    gap: tuple[int, int] | None


def room_snapshot(*, room_id: int, after: int | None) -> Snapshot:
    """The room's newest number and, for a resume, the messages after `after`.

    Read after the socket joined the room's group, so that nothing committed
    in between is missed (duplicates are dropped by number in the consumer).
    """
    last = Room.objects.values_list("last_message_number", flat=True).get(pk=room_id)
    if after is None or after >= last:
        return Snapshot(last_number=last, messages=[], gap=None)
    start = after
    gap = None
    if last - after > settings.CHAT_REPLAY_MAX:
        start = last - settings.CHAT_REPLAY_MAX
        gap = (after, start + 1)
    messages = list(
        Message.objects.visible()
        .filter(room_id=room_id, number__gt=start, number__lte=last)
        .select_related("room", "author")
        .order_by("number")
    )
    return Snapshot(last_number=last, messages=messages, gap=gap)


def rooms_last_numbers(*, room_ids: set[int]) -> dict[int, int]:
    """The newest message number of each room (room id -> number)."""
    return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "last_message_number"))


def messages_between(*, room_id: int, after: int, before: int) -> list[Message]:
    """Stored messages with after < number < before, ascending: a hole to fill."""
    return list(
        Message.objects.visible()
        .filter(room_id=room_id, number__gt=after, number__lt=before)
        .select_related("room", "author")
        .order_by("number")
    )


def direct_room_open(*, user: User, username: str) -> Room:
    """The direct room of `user` and the active user `username`, made on first use."""
    other = get_user_model().objects.filter(username=username, is_active=True).first()
    if other is None or other.pk == user.pk:
        raise ChatError("not_found", "no such user")
    low, high = sorted([user, other], key=lambda member: member.pk)
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
