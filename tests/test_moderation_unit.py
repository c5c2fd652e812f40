"""chat/sockets/moderation.py's `Moderation` on its own: a room socket's answers to a room
changed and to access lost, with its send and close faked (no layer, no database)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import AnonymousUser

from chat.models import Room
from chat.protocol import CloseCode
from chat.sockets.moderation import Moderation

PERSON = SimpleNamespace(pk=7, is_authenticated=True)


def moderation(kind: str, user: Any = PERSON) -> tuple[Moderation, list[Any]]:
    said: list[Any] = []

    async def send(text: str) -> None:
        said.append(text)

    async def close(code: CloseCode) -> None:
        said.append(code)

    room = Room(pk=1, slug="r", kind=kind)
    return Moderation(room=room, user=user, send=send, close=close), said


def changed(kind: str, member_ids: list[int] | None = None, **fields: Any) -> dict[str, Any]:
    event = {"kind": kind, "archived": False, "live_comments": False, "public_viewing": False}
    return {**event, **fields, "member_ids": member_ids, "text": '{"type":"room"}'}


async def test_a_room_made_private_without_the_reader_closes_4404_and_changes_the_room():
    socket, said = moderation(Room.Kind.PUBLIC)
    await socket.room_changed(changed(Room.Kind.PRIVATE, member_ids=[8], archived=True))
    assert said == [CloseCode.NOT_FOUND]
    assert (socket.room.kind, socket.room.archived) == (Room.Kind.PRIVATE, True)


async def test_a_room_still_readable_is_told_as_it_is():
    socket, said = moderation(Room.Kind.PUBLIC)
    await socket.room_changed(changed(Room.Kind.PRIVATE, member_ids=[7]))
    assert said == ['{"type":"room"}']


async def test_a_viewer_not_signed_in_is_asked_to_log_in_when_viewing_ends():
    socket, said = moderation(Room.Kind.BROADCAST, user=AnonymousUser())
    await socket.room_changed(changed(Room.Kind.BROADCAST, public_viewing=False))
    assert said == [CloseCode.UNAUTHENTICATED]


async def test_access_lost_closes_a_private_rooms_member_only():
    socket, said = moderation(Room.Kind.PRIVATE)
    await socket.access_lost({"user_ids": [8]})
    assert said == []
    await socket.access_lost({"user_ids": [7]})
    assert said == [CloseCode.NOT_FOUND]
    public, said = moderation(Room.Kind.PUBLIC)
    await public.access_lost({"user_ids": [7]})
    assert said == []
