"""Helpers shared by the room socket's tests (tests/test_consumer_*.py): the room's rows
as stored, messages written without a socket, and the frames a socket waits for.

Every socket goes through chatsite.asgi.application (Origin gate, sessions,
token auth, routing) and the channels-redis layer of tests/settings.py; the
database is the real PostgreSQL test database. Bad input lives in
test_consumer_errors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.domain import writes
from chat.models import Message, Room
from tests.conftest import Socket

ORIGIN = (b"origin", b"http://localhost")


# --- helpers -----------------------------------------------------------------


@database_sync_to_async
def stored(slug: str) -> list[tuple[int, str, str, str | None, bool]]:
    """The room's rows: (number, body, author, client_id, deleted), by number."""
    return [
        (number, body, author, client_id, deleted_at is not None)
        for number, body, author, client_id, deleted_at in Message.objects.filter(room__slug=slug)
        .order_by("number")
        .values_list("number", "body", "author__username", "client_id", "deleted_at")
    ]


@database_sync_to_async
def room_last_number(slug: str) -> int:
    return Room.objects.get(slug=slug).last_message_number


@database_sync_to_async
def create(
    room: Room, author: AbstractBaseUser, body: str, client_id: str | None = None
) -> Message:
    """Store a message through the service, without broadcasting it."""
    message, created = writes.message_create(
        room_id=room.pk, author=author, body=body, client_id=client_id
    )
    assert created
    return message


@database_sync_to_async
def delete(room: Room, number: int, user: AbstractBaseUser) -> None:
    writes.message_delete(room_id=room.pk, number=number, user=user)


@database_sync_to_async
def bulk_messages(room: Room, author: AbstractBaseUser, count: int) -> None:
    """`count` more messages numbered on from the room's newest, fast (no broadcast)."""
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        first = locked.last_message_number + 1
        Message.objects.bulk_create(
            Message(room=locked, number=number, author=author, body=f"m{number}")
            for number in range(first, first + count)
        )
        Room.objects.filter(pk=room.pk).update(last_message_number=first + count - 1)


async def send_body(sock: Socket, body: str, client_id: str | None = None) -> dict[str, Any]:
    """Send a message and return its acknowledgement (the sender's copy)."""
    frame: dict[str, Any] = {"type": "message.send", "body": body}
    if client_id is not None:
        frame["client_id"] = client_id
    await sock.send(frame)
    return await sock.receive_type("message")


async def messages_until_quiet(sock: Socket, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Every frame that arrives before `quiet` seconds pass without one."""
    frames = []
    while not await sock.nothing(quiet):
        frames.append(await sock.receive())
    return frames


async def sync(sock: Socket) -> None:
    """Wait until the socket has handled every frame sent before: ping answers in order."""
    await sock.send({"type": "ping"})
    assert await sock.receive() == {"type": "pong"}


@pytest.fixture
def carol(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("carol")


# --- history -----------------------------------------------------------------


async def history(sock: Socket, **fields: Any) -> dict[str, Any]:
    await sock.send({"type": "history", **fields})
    return await sock.receive_type("history")


def ids(frame: dict[str, Any]) -> list[int]:
    return [message["id"] for message in frame["messages"]]
