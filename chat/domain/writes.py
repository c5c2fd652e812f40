"""Storing, editing and deleting messages, and marking a room read: one transaction each.

Sync, typed and keyword-only: sockets call these once each through the
database hop, the admin and views directly (through chat.actions, which send
the events). Refusals raise `ChatError` with a protocol code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat.domain.access import write_check
from chat.domain.author_state import author_check, author_may_write, author_state
from chat.domain.inputs import MAX_NUMBER, body_clean, client_id_clean
from chat.domain.mentions import mentioned_members
from chat.errors import ChatError
from chat.files.attachments import attachment_ids_clean, attachments_attach
from chat.models import Mention, Message, ReadState, Room, wire_relations_set
from chat.protocol import whole_number


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
        state = author_state(author_id=author.pk, room_id=room_id, client_id=client_id)
        # Before anything else: a resend of a message stored before the room was
        # archived, or before the author reached the limit, is acknowledged.
        if state is not None and state.get("resent") is not None:
            resent = state["resent"]
        else:
            author_check(state, author_id=author.pk, room_id=room_id)
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
