"""The message rate limit on the real Redis layer: shared, honest, resends free."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from chat.models import Message

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frames_without_presence"),
    pytest.mark.redis,
]


@pytest.fixture(autouse=True)
def three_per_two_seconds(settings) -> None:
    settings.CHAT_RATE_LIMIT = (3, 2)


def send(n: int, client_id: str | None = None) -> dict:
    frame = {"type": "message.send", "body": f"m{n}"}
    if client_id:
        frame["client_id"] = client_id
    return frame


@database_sync_to_async
def stored_count() -> int:
    return Message.objects.count()


async def test_the_limit_answers_with_an_honest_retry_after(connect, alice, general):
    socket, _ = await connect(alice)
    for n in range(3):
        await socket.send(send(n))
        assert (await socket.receive_type("message"))["body"] == f"m{n}"
    await socket.send(send(3, "late"))
    refused = await socket.receive_type("error")
    assert refused["code"] == "rate_limited" and refused["client_id"] == "late"
    assert 0 < refused["retry_after"] <= 2
    assert await stored_count() == 3
    await asyncio.sleep(refused["retry_after"])
    await socket.send(send(3, "late"))
    assert (await socket.receive_type("message"))["client_id"] == "late"


async def test_resends_and_refused_sends_do_not_count(connect, alice, general):
    socket, _ = await connect(alice)
    await socket.send(send(0, "once"))
    await socket.receive_type("message")
    for _ in range(5):
        await socket.send(send(0, "once"))  # resends of a stored message
        assert (await socket.receive_type("message"))["id"] == 1
        await socket.send({"type": "message.send", "body": "   "})  # refused: empty
        assert (await socket.receive_type("error"))["code"] == "empty"
    for n in range(1, 3):
        await socket.send(send(n))
        assert (await socket.receive_type("message"))["body"] == f"m{n}"
    await socket.send(send(9))
    assert (await socket.receive_type("error"))["code"] == "rate_limited"


async def test_the_limit_is_shared_by_a_users_sockets_and_rooms(connect, alice, bob, general):
    from chat.models import Room

    lounge = await database_sync_to_async(Room.objects.create)(
        name="Lounge", slug="lounge", kind=Room.Kind.PUBLIC
    )
    first, _ = await connect(alice)
    second, _ = await connect(alice, lounge.slug)
    other, _ = await connect(bob)
    for n in range(3):
        await (first if n % 2 else second).send(send(n))
        await (first if n % 2 else second).receive_type("message")
    await second.send(send(3))
    assert (await second.receive_type("error"))["code"] == "rate_limited"
    await other.send(send(0))  # another user has a limit of their own
    while (frame := await other.receive_type("message"))["user"] != "bob":
        pass
    assert frame["body"] == "m0"


async def test_ten_refusals_in_a_row_close_with_4429(connect, alice, general):
    socket, _ = await connect(alice)
    for n in range(3):
        await socket.send(send(n))
        await socket.receive_type("message")
    for n in range(10):
        await socket.send(send(10 + n))
    for _ in range(10):
        assert (await socket.receive_type("error"))["code"] == "rate_limited"
    assert await socket.closed_with() == 4429
    assert await stored_count() == 3
