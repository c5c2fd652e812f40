"""A room's state, and a reader's place in a room and what they are told of it."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from chat.actions.outbox import send_on_commit
from chat.domain import attention, events, writes
from chat.errors import ChatError
from chat.models import Room
from chat.platform.groups import me_group_name, room_group_name

# The largest state, in bytes of its JSON.
STATE_MAX_BYTES = 16 * 1024


def room_state_set(*, room: Room, state: Any) -> int:
    """Set a broadcast room's state, broadcast on commit; its new version.

    `state` is any JSON value of at most 16 KiB; anything else is bad_request.
    (Who may set it is the caller's to check: a bot's key for the room, or staff.)
    """
    if room.kind != Room.Kind.BROADCAST:
        raise ChatError("bad_request", "only a broadcast room has a state")
    try:
        text = events.dumps(state)
    except (TypeError, ValueError, RecursionError):
        raise ChatError("bad_request", "the state must be a JSON value") from None
    if len(text.encode()) > STATE_MAX_BYTES:
        raise ChatError("bad_request", f"the state has at most {STATE_MAX_BYTES} bytes of JSON")
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        locked.state = json.loads(text)
        locked.state_version += 1
        locked.save(update_fields=["state", "state_version"])
        send_on_commit(
            room_group_name(room.pk),
            events.chat_state(room_id=room.pk, state=locked.state, version=locked.state_version),
        )
    return locked.state_version


def room_read(*, room: Room, user: User, number: object) -> writes.ReadMark:
    """Mark the room read up to `number` (never backwards); when the mark moved, the
    reader's pages (/ws/me/, on any worker) count again."""
    mark = writes.room_read(room=room, user=user, number=number)
    if mark.moved:
        send_on_commit(me_group_name(user.pk), events.chat_attention(room_id=room.pk))
    return mark


def notify_set(*, user: User, room: Room, notify: object) -> str:
    """Store what the reader is told of a room; their pages count again."""
    setting = attention.notify_set(user=user, room=room, notify=notify)
    send_on_commit(me_group_name(user.pk), events.chat_attention(room_id=room.pk))
    return setting
