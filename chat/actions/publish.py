"""Publishing from the server: Django code, the HTTP API and the commands tell a room something.

    from chat.actions.publish import publish

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

from django.conf import settings
from django.contrib.auth.models import User

from chat.actions.messages import message_send
from chat.actions.rooms import STATE_MAX_BYTES, room_state_set
from chat.domain.bots import bot_account
from chat.models import Message, Room

__all__ = ["STATE_MAX_BYTES", "publish", "room_state_set"]


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
    sent = message_send(
        room_id=room.pk, author=author, body=body, client_id=client_id, publisher=True
    )
    assert sent.message is not None  # message_send always has it
    return sent.message
