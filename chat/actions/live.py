"""What a room is told and never stores: live comments, and who is typing.

These run on the event loop (a socket's), and their events leave at once:
there is no transaction to wait for. The gate is the same as for writes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from chat.actions.outbox import deliver
from chat.domain import events
from chat.domain.access import write_check
from chat.domain.author_state import author_may_write
from chat.domain.inputs import body_clean
from chat.domain.limits import rate_place
from chat.errors import ChatError
from chat.models import Room
from chat.platform.db import database_sync_to_async
from chat.platform.redis import keys, pools

# Seconds between two `typing` of one user in one room, over all their sockets.
TYPING_INTERVAL = 2.0


def comment_clean(body: object) -> str:
    """A live comment: 1..CHAT_COMMENT_MAX code points once stripped."""
    return body_clean(body, limit=settings.CHAT_COMMENT_MAX, noun="comment")


async def comment_send(
    layer: Any, *, room: Room, user: User, body: object, time: float | None
) -> None:
    """A live comment: to everyone in the room now, and nowhere else ever."""
    if not room.live_comments:
        raise ChatError("forbidden", "this room takes no live comments")
    if room.archived:
        raise ChatError("room_archived", "this room is archived and read-only")
    text = comment_clean(body)
    async with rate_place(layer, user_id=user.pk, what="comments") as place:
        await database_sync_to_async(author_may_write)(author_id=user.pk, room_id=room.pk)
        place.kept = True
    event = events.chat_comment(room_id=room.pk, username=user.get_username(), body=text, time=time)
    await deliver(layer, [(room.group_name, event)])


async def typing_tell(layer: Any, *, room: Room, user: User) -> bool:
    """Tell the room the user is typing, at most once per TYPING_INTERVAL over all
    their sockets on every worker; whether it was told. A broadcast room's audience
    types nothing anyone sees."""
    try:
        write_check(room=room, user=user, verb="type")
    except ChatError:
        return False
    connection = pools.for_room(layer, room.pk)
    if not await pools.first_in(connection, keys.typing(room.pk, user.pk), TYPING_INTERVAL):
        return False
    event = events.chat_typing(user_id=user.pk, username=user.get_username())
    await deliver(layer, [(room.group_name, event)])
    return True
