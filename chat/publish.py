"""Publishing from the server: Django code, the HTTP API and the commands tell a room something.

    from chat.publish import publish

    def goal(match):
        publish(match.room_slug, f"Goal! {match.home}-{match.away}")

A published message is a message like any other: numbered in its room,
stored, in history and resumes. It is stored at once, in the caller's
transaction if there is one, and broadcast once that transaction commits.
Without an author it is published by the bot account CHAT_PUBLISHER.

A broadcast room's state (a score, a quote: a small JSON value) is set with
`room_state_set`; every socket gets it in its welcome and live when it changes.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from chat import events
from chat.bots import bot_account
from chat.broadcast import group_send_on_commit
from chat.errors import ChatError
from chat.models import Message, Room, room_group_name
from chat.services import message_create

# The largest state, in bytes of its JSON.
STATE_MAX_BYTES = 16 * 1024


def publish(
    room: Room | str,
    body: str,
    *,
    author: User | str | None = None,
    client_id: str | None = None,
) -> Message:
    """Store `body` in `room` as `author` (a user, a username, or CHAT_PUBLISHER's bot)
    and broadcast it once the surrounding transaction commits; the message.

    A client_id already used by the author in the room returns the stored
    message, and stores and broadcasts nothing. Refusals raise ChatError.
    """
    room = room if isinstance(room, Room) else Room.objects.get(slug=room)
    if not isinstance(author, User):
        author = bot_account(author or settings.CHAT_PUBLISHER)
    message, created = message_create(
        room_id=room.pk, author=author, body=body, client_id=client_id, publisher=True
    )
    if created:
        broadcast_on_commit(message)
    return message


def broadcast_on_commit(message: Message) -> None:
    """A stored message goes to every socket of its room once its transaction commits."""
    group_send_on_commit(room_group_name(message.room_id), events.chat_message(message))


def room_state_set(*, room: Room, state: Any) -> int:
    """Set a broadcast room's state, broadcast on commit; its new version.

    `state` is any JSON value of at most 16 KiB; anything else is bad_request.
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
        group_send_on_commit(
            room_group_name(room.pk),
            events.chat_state(room_id=room.pk, state=locked.state, version=locked.state_version),
        )
    return locked.state_version
