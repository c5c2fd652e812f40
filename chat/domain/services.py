"""Every write of the chat: sync, typed, keyword-only, one transaction each.

Consumers call these once each through `database_sync_to_async`; the admin and
views call them directly. Refusals raise `ChatError` with a protocol code.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from chat.domain.access import write_check
from chat.domain.mentions import mentioned_members
from chat.errors import ChatError
from chat.files.attachments import attachment_ids_clean, attachments_attach
from chat.models import Mention, Message, Mute, ReadState, Room, wire_relations_set
from chat.protocol import MAX_ID, CloseCode, whole_number

# Ids beyond what the database stores are answered as "no such message".
MAX_NUMBER = MAX_ID
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


def body_clean(
    body: object, *, limit: int | None = None, noun: str = "message", may_be_empty: bool = False
) -> str:
    """Validate the body of a `noun`: a string, 1..`limit` (CHAT_BODY_MAX) code points
    once stripped (0 too when `may_be_empty`: a message with attachments)."""
    if not isinstance(body, str):
        raise ChatError("bad_request", "body must be a string")
    text_check(body, field="body")
    body = body.strip(WHITE_SPACE)
    limit = settings.CHAT_BODY_MAX if limit is None else limit
    if not body and not may_be_empty:
        raise ChatError("empty", f"the {noun} is empty")
    if len(body) > limit:
        raise ChatError("too_long", f"a {noun} has at most {limit} characters")
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


def author_may_write(*, author_id: int, room_id: int) -> None:
    """Refuse a deactivated author (closing the socket, 4403) and a muted one (`muted`).

    Read in the write's transaction, so that a moderator's decision holds from
    its commit on, whatever the open sockets have heard yet.
    """
    _author_check(
        _author_state(author_id=author_id, room_id=room_id), author_id=author_id, room_id=room_id
    )


def _author_state(*, author_id: int, room_id: int, client_id: str | None = None) -> Any:
    """The author's is_active and mutes in the room and, with a client_id, the id
    of the author's message in the room that already has it (or None): one query,
    as a dict, or None for no such user."""
    sql, params = author_state_query(author_id=author_id, room_id=room_id, client_id=client_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        # DB-API: the first item of each column's description is its name
        # (psycopg's Column objects and sqlite3's tuples alike).
        columns = [column[0] for column in cursor.description]
    return None if row is None else dict(zip(columns, row, strict=True))


def author_state_query(
    *, author_id: int, room_id: int, client_id: str | None
) -> tuple[str, list[Any]]:
    """The author's is_active, mutes in the room and, with a client_id, resend: the SQL
    (compiled once per process) and its parameters. chat.actions.plain runs it too."""
    sql, params = _author_state_sql(client_id is not None)
    values = {"author_id": author_id, "room_id": room_id, "client_id": client_id}
    return sql, [values[p] if isinstance(p, _Parameter) else p for p in params]


class _Parameter(str):
    """The name of a parameter of a query compiled once (the others are constants)."""


# Stand-ins for the query's parameters while it is compiled: each appears in
# the parameter list the ORM makes, and tells which value goes in its place.
_SENTINELS: dict[str, Any] = {
    "author_id": -7_000_001,
    "room_id": -7_000_002,
    "client_id": "\x01client_id",
}


@functools.cache
def _author_state_sql(with_client_id: bool) -> tuple[str, tuple[Any, ...]]:
    """The ORM's SQL for `_author_state`, compiled once per process.

    (sql, its parameters: a _Parameter naming the value to put in, or a constant.)

    Building this query (two subqueries and an EXISTS) cost the ORM about half
    of all the work of storing a message; compiled once, it costs nothing.
    """
    room_id = _SENTINELS["room_id"]
    annotations: dict[str, Any] = {
        "muted_until": Subquery(_mute_end(room_id=room_id)),
        "muted": Exists(_mutes(room_id)),
    }
    if with_client_id:
        annotations["resent"] = Subquery(
            Message.objects.filter(
                room_id=room_id, author_id=OuterRef("pk"), client_id=_SENTINELS["client_id"]
            )
            .order_by()
            .values("pk")[:1]
        )
    query = (
        get_user_model()
        .objects.filter(pk=_SENTINELS["author_id"])
        .annotate(**annotations)
        .values("is_active", *annotations)
        .order_by()[:1]
    )
    sql, params = query.query.sql_with_params()
    by_value = {value: _Parameter(name) for name, value in _SENTINELS.items()}
    return sql, tuple(by_value.get(param, param) for param in params)


def _author_check(state: Any, *, author_id: int, room_id: int) -> None:
    if state is None or not state["is_active"]:
        raise ChatError("forbidden", "this account is deactivated", close_code=CloseCode.FORBIDDEN)
    if state["muted"]:
        # The refusal's words name the mute that keeps the author silent longest.
        mute = mute_state(user_id=author_id, room_id=room_id)
        raise ChatError("muted", mute_words(mute))


def _wire_time(moment: Any) -> str:
    return str(moment.isoformat(timespec="minutes").replace("+00:00", "Z"))


def mute_state(*, user_id: int | None, room_id: int) -> dict[str, Any] | None:
    """The user's mute in force for the room, as the wire shows it: {"scope": "room" or
    "all", "until": ISO time or None (no end)}, or None when they may write.

    Of several mutes in force, the one that ends last: it says when the user may
    write here again (a mute with no end before any other).
    """
    if user_id is None:
        return None
    mute = (
        Mute.objects.active(room_id=room_id)
        .filter(user_id=user_id)
        .order_by(F("until").desc(nulls_first=True), F("room_id").asc(nulls_first=True))
        .values("room_id", "until")
        .first()
    )
    if mute is None:
        return None
    return {
        "scope": "all" if mute["room_id"] is None else "room",
        "until": None if mute["until"] is None else _wire_time(mute["until"]),
    }


def mute_words(mute: dict[str, Any] | None) -> str:
    """The `detail` of a `muted` refusal: "you are muted in every room until 2026-…Z"."""
    where = "every room" if mute is not None and mute["scope"] == "all" else "this room"
    detail = f"you are muted in {where}"
    if mute is not None and mute["until"] is not None:
        detail += f" until {mute['until']}"
    return detail


def _mutes(room_id: int) -> QuerySet[Mute]:
    return Mute.objects.active(room_id=room_id).filter(user_id=OuterRef("pk"))


def _mute_end(*, room_id: int) -> QuerySet[Mute, Any]:
    """The latest end of the user's mutes in force; NULL while one has no end."""
    return _mutes(room_id).order_by(F("until").desc(nulls_first=True)).values("until")[:1]


def _room_for_write(room_id: int, user: User, verb: str) -> Room:
    """Lock the room row, and pass the gate (chat.domain.access.write_check). In a broadcast
    room only publishers change posts: an account that once posted there and may not
    publish now may not change them."""
    room = Room.objects.select_for_update().get(pk=room_id)
    write_check(room=room, user=user, verb=verb)
    return room


def _next_number(room_id: int) -> Room:
    """Lock the room's row and take its next message number (in last_message_number).

    One statement, where the ORM would make a locking read and an update; the
    number is only kept if the transaction commits.
    """
    table = Room._meta.db_table
    rooms = list(
        Room.objects.raw(
            f"UPDATE {table} SET last_message_number = last_message_number + 1"  # noqa: S608  (a model table name)
            " WHERE id = %s RETURNING *",
            [room_id],
        )
    )
    if not rooms:
        raise Room.DoesNotExist(f"no room {room_id}")
    return rooms[0]


def message_create(
    *,
    room_id: int,
    author: User,
    body: object,
    client_id: object,
    reply_to: object = None,
    publisher: bool = False,
    attachments: object = None,
) -> tuple[Message, bool]:
    """Store a message under the next number of its room; (message, created).

    A client_id the author already used in this room returns the stored message
    and False: a resend is stored once. One transaction: the author's row is
    locked first (one author's sends are taken one at a time), their state is
    read (deactivated, muted, a resend), their messages of the window are
    counted against CHAT_RATE_LIMIT (stored messages only; publishers are not
    counted), then the room's row is locked until commit while it gives the
    number, so numbers are gapless and committed in order. A reply reads its
    original, @names are looked up and stored as mentions, and `attachments`
    (the author's upload ids) are attached, or the whole message refused
    (chat.files.attachments.attachments_attach). With attachments the body may be empty.
    A socket's plain message on PostgreSQL takes chat.actions.plain instead: the same
    rules in one round trip on the event loop.

    In a broadcast room only publishers post: `publisher` (a bot's key for the
    room, or Django code: chat.actions.publish) or a staff user.
    """
    attachment_ids = attachment_ids_clean(attachments)
    body = body_clean(body, may_be_empty=bool(attachment_ids))
    client_id = client_id_clean(client_id)
    with transaction.atomic():
        _author_lock(author.pk)
        state = _author_state(author_id=author.pk, room_id=room_id, client_id=client_id)
        # Before anything else: a resend of a message stored before the room was
        # archived, or before the author reached the limit, is acknowledged.
        if state is not None and state.get("resent") is not None:
            resent = state["resent"]
        else:
            _author_check(state, author_id=author.pk, room_id=room_id)
            if not publisher:
                rate_check(author_id=author.pk)
            room = _next_number(room_id)
            write_check(room=room, user=author, publisher=publisher)
            message = Message(
                room=room,
                number=room.last_message_number,
                author=author,
                body=body,
                client_id=client_id,
                reply_to=None if reply_to is None else _reply_target(room_id, reply_to),
            )
            message.save(force_insert=True)
            mentions = _mentions_store(
                message, mentioned_members(room=room, author_id=author.pk, body=body)
            )
            attached = (
                attachments_attach(message=message, uploader_id=author.pk, ids=attachment_ids)
                if attachment_ids
                else []
            )
            wire_relations_set(message, reactions=[], mentions=mentions, attachments=attached)
            return message, True
    return Message.objects.for_wire().get(pk=resent), False


def _author_lock(author_id: int) -> None:
    """Lock the author's row until commit (PostgreSQL; SQLite's IMMEDIATE transactions
    take one writer at a time anyway): their sends are counted and numbered in turn,
    so that two at once never both pass the limit, nor store one client_id twice."""
    list(get_user_model().objects.select_for_update().filter(pk=author_id).values_list("pk"))


def rate_check(*, author_id: int) -> None:
    """Refuse a message over CHAT_RATE_LIMIT: the author's stored messages of the
    window are counted (deleted ones too); ChatError(rate_limited) with retry_after,
    when the oldest of the counted ones leaves the window."""
    count, seconds = settings.CHAT_RATE_LIMIT
    now = timezone.now()
    newest = list(
        Message.objects.filter(author_id=author_id, created__gt=now - timedelta(seconds=seconds))
        .order_by("-created")
        .values_list("created", flat=True)[:count]
    )
    if len(newest) >= count:
        wait = (newest[-1] + timedelta(seconds=seconds) - now).total_seconds()
        raise rate_refusal(wait)


def rate_refusal(wait: float) -> ChatError:
    """The refusal of a message over CHAT_RATE_LIMIT, `wait` seconds before it would pass."""
    count, seconds = settings.CHAT_RATE_LIMIT
    # Rounded up: a client that waits exactly retry_after is let through.
    retry_after = max(0.01, math.ceil(wait * 100) / 100)
    return ChatError(
        "rate_limited", f"at most {count} messages per {seconds} s", retry_after=retry_after
    )


def _reply_target(room_id: int, number: object) -> Message:
    """The message a reply answers: one of this room's, not deleted; or bad_request."""
    number = whole_number(number, "reply_to")
    original = (
        Message.objects.visible()
        .select_related("author")
        .filter(room_id=room_id, number=min(number, MAX_NUMBER))
        .first()
    )
    if original is None:
        raise ChatError("bad_request", "reply_to names no message in this room")
    return original


def _mentions_store(message: Message, users: list[Any]) -> list[Mention]:
    mentions = [Mention(message=message, user=user) for user in users]
    if mentions:
        Mention.objects.bulk_create(mentions)
    return mentions


def _message_for_write(*, room_id: int, number: object) -> Message:
    number = whole_number(number, "id")
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


@dataclass(frozen=True)
class Edited:
    """An edited message, the usernames it mentions now, and whose mentions changed."""

    message: Message
    mentions: list[str]
    mentions_changed: list[int]


def message_edit(*, room_id: int, number: object, user: User, body: object) -> Edited:
    """Replace a message's body, and the mentions it makes; the author only (in a
    broadcast room, an author who may still publish there).

    A message with attachments may be left with an empty body, as it was sent.
    """
    body = body_clean(body, may_be_empty=True)
    with transaction.atomic():
        _room_for_write(room_id, user, "edit posts")
        message = _message_for_write(room_id=room_id, number=number)
        if not body and not message.attachments.exists():
            raise ChatError("empty", "the message is empty")
        if message.author_id != user.pk:
            raise ChatError("forbidden", "only the author may edit a message")
        author_may_write(author_id=user.pk, room_id=room_id)
        message.body = body
        message.edited = True
        message.save(update_fields=["body", "edited"])
        return mentions_refresh(message)


def mentions_refresh(message: Message) -> Edited:
    """Store the mentions of a message's body as it is now (after an edit)."""
    now = mentioned_members(room=message.room, author_id=message.author_id, body=message.body)
    now_ids = {member.pk for member in now}
    before_ids = set(message.mentions.values_list("user_id", flat=True))
    Mention.objects.filter(message=message).exclude(user_id__in=now_ids).delete()
    _mentions_store(message, [member for member in now if member.pk not in before_ids])
    return Edited(
        message=message,
        mentions=[member.get_username() for member in now],
        mentions_changed=sorted(before_ids ^ now_ids),
    )


@dataclass(frozen=True)
class Deleted:
    """A deleted message and the users it mentioned (their counts go down)."""

    message: Message
    mention_ids: list[int]


def message_delete(
    *, room_id: int, number: object, user: User, moderating: bool = False
) -> Deleted:
    """Delete a message, keeping its number; the author or staff (in a broadcast room,
    publishers only).

    `moderating` is the admin's path: it may delete in archived rooms too.
    """
    with transaction.atomic():
        if not moderating:
            _room_for_write(room_id, user, "delete posts")
        message = _message_for_write(room_id=room_id, number=number)
        if message.author_id != user.pk and not getattr(user, "is_staff", False):
            raise ChatError("forbidden", "only the author or staff may delete a message")
        message.deleted_at = timezone.now()
        message.save(update_fields=["deleted_at"])
        mention_ids = list(message.mentions.values_list("user_id", flat=True))
    return Deleted(message=message, mention_ids=mention_ids)


@dataclass(frozen=True)
class ReadMark:
    """A reader's mark in a room, and whether this read moved it."""

    number: int
    moved: bool


def room_read(*, room: Room, user: User, number: object) -> ReadMark:
    """Mark the room read up to `number` (never backwards); the mark."""
    number = whole_number(number, "id")
    last = Room.objects.values_list("last_message_number", flat=True).get(pk=room.pk)
    number = min(number, last)
    state, _ = ReadState.objects.get_or_create(user_id=user.pk, room_id=room.pk)
    if number > state.last_read_number:
        # Conditional update: two sockets marking at once never move it back.
        moved = ReadState.objects.filter(pk=state.pk, last_read_number__lt=number).update(
            last_read_number=number
        )
        return ReadMark(number=number, moved=moved > 0)
    return ReadMark(number=state.last_read_number, moved=False)


@dataclass(frozen=True)
class Snapshot:
    """What a socket sends right after `welcome`: the replay of a resume; and the room
    as it was then (a broadcast room's state)."""

    last_number: int
    messages: list[Message]
    gap: tuple[int, int] | None
    room: Room | None = None
    # The reader's mute in force for the room (mute_state), for the welcome.
    mute: dict[str, Any] | None = None


def room_snapshot(*, room_id: int, after: int | None) -> Snapshot:
    """The room's newest number and, for a resume, the messages after `after`.

    Read after the socket joined the room's group, so that nothing committed
    in between is missed (duplicates are dropped by number in the consumer).
    """
    room = Room.objects.get(pk=room_id)
    last = room.last_message_number
    if after is None or after >= last:
        return Snapshot(last_number=last, messages=[], gap=None, room=room)
    start = after
    gap = None
    if last - after > settings.CHAT_REPLAY_MAX:
        start = last - settings.CHAT_REPLAY_MAX
        gap = (after, start + 1)
    messages = list(
        Message.objects.visible()
        .filter(room_id=room_id, number__gt=start, number__lte=last)
        .for_wire()
        .order_by("number")
    )
    return Snapshot(last_number=last, messages=messages, gap=gap, room=room)


def socket_snapshot(*, user_id: int | None, room_id: int, after: int | None) -> Snapshot:
    """room_snapshot for a socket that has joined its groups; refuses a deactivated user.

    The account is read again here: one deactivated after the handshake was
    authenticated, but before its group heard of it, is refused all the same.
    (No account: a viewer not signed in, of a broadcast room open to them.)
    """
    if (
        user_id is not None
        and not get_user_model().objects.filter(pk=user_id, is_active=True).exists()
    ):
        raise ChatError("forbidden", "this account is deactivated", close_code=CloseCode.FORBIDDEN)
    snapshot = room_snapshot(room_id=room_id, after=after)
    return replace(snapshot, mute=mute_state(user_id=user_id, room_id=room_id))


def rooms_last_numbers(*, room_ids: set[int]) -> dict[int, int]:
    """The newest message number of each room (room id -> number)."""
    return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "last_message_number"))


def messages_between(*, room_id: int, after: int, before: int) -> list[Message]:
    """Stored messages with after < number < before, ascending: a hole to fill."""
    return list(
        Message.objects.visible()
        .filter(room_id=room_id, number__gt=after, number__lt=before)
        .for_wire()
        .order_by("number")
    )


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
