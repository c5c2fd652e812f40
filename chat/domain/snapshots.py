"""What a socket reads when it joins a room or finds a hole: snapshots and replays.

Read after the socket joined the room's group, so nothing committed in between
is missed; duplicates are dropped by number on the socket.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from chat.domain.mutes import mute_state
from chat.errors import ChatError
from chat.models import Message, Room
from chat.protocol import CloseCode


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
