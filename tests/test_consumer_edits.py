"""Changing what was said, on the room socket (docs/protocol-v1.md, The WebSocket):
message.edit, message.delete, and the read mark.

On the whole ASGI stack, as tests/consumer_helpers.py tells.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser

from chat.models import ReadState, Room
from tests.consumer_helpers import (
    bulk_messages,
    history,
    ids,
    messages_until_quiet,
    send_body,
    stored,
    sync,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


# --- message.edit / message.delete -------------------------------------------


@pytest.mark.redis
async def test_edit_by_the_author_is_broadcast(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await send_body(a, "frist", "c1")
    await b.receive_type("message")
    await a.send({"type": "message.edit", "id": 1, "body": "  first  "})
    edited = {"type": "message.edited", "id": 1, "body": "first", "mentions": []}
    assert await a.receive() == edited
    assert await b.receive() == edited
    assert await stored("general") == [(1, "first", "alice", "c1", False)]
    message = (await history(b))["messages"][0]
    assert (message["body"], message["edited"]) == ("first", True)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"id": 1, "body": "mine now"}, "forbidden"),
        ({"id": 2, "body": "x"}, "not_found"),
        ({"id": 0, "body": "x"}, "not_found"),
        ({"id": 2**70, "body": "x"}, "not_found"),
        ({"id": "1", "body": "x"}, "bad_request"),
        ({"id": True, "body": "x"}, "bad_request"),
        ({"id": 1.0, "body": "x"}, "bad_request"),
        ({"body": "x"}, "bad_request"),
        ({"id": 1}, "bad_request"),
        ({"id": 1, "body": "   "}, "empty"),
        ({"id": 1, "body": "x" * 4001}, "too_long"),
    ],
)
@pytest.mark.redis
async def test_edit_refused(connect, alice, bob, general, fields, code):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await send_body(a, "original")
    await b.receive_type("message")
    await b.send({"type": "message.edit", **fields})
    error = await b.receive_type("error")
    assert error["code"] == code
    assert await a.nothing()
    assert await stored("general") == [(1, "original", "alice", None, False)]


@pytest.mark.redis
async def test_edit_of_a_deleted_message_is_not_found(connect, alice, general):
    a, _ = await connect(alice)
    await send_body(a, "gone")
    await a.send({"type": "message.delete", "id": 1})
    await a.receive_type("message.deleted")
    await a.send({"type": "message.edit", "id": 1, "body": "back"})
    assert (await a.receive_type("error"))["code"] == "not_found"
    assert await stored("general") == [(1, "gone", "alice", None, True)]


@pytest.mark.redis
async def test_delete_by_the_author_keeps_the_number(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    for n in (1, 2, 3):
        await send_body(a, f"m{n}")
        await b.receive_type("message")
    await a.send({"type": "message.delete", "id": 3})
    assert await a.receive() == {"type": "message.deleted", "id": 3}
    assert await b.receive() == {"type": "message.deleted", "id": 3}
    assert (await stored("general"))[2] == (3, "m3", "alice", None, True)
    # The number stays taken.
    assert (await send_body(b, "m4"))["id"] == 4
    assert (await a.receive_type("message"))["id"] == 4
    assert ids(await history(a)) == [1, 2, 4]
    # Left out of replay, counted by welcome.
    await a.send({"type": "message.delete", "id": 2})
    await a.receive_type("message.deleted")
    late, welcome = await connect(bob, after=0)
    assert welcome["last_id"] == 4
    assert [m["id"] for m in await messages_until_quiet(late)] == [1, 4]
    # Deleting again: it is gone.
    await a.send({"type": "message.delete", "id": 3})
    assert (await a.receive_type("error"))["code"] == "not_found"


@pytest.mark.redis
async def test_delete_by_someone_else_is_forbidden(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await send_body(a, "mine")
    await b.receive_type("message")
    await b.send({"type": "message.delete", "id": 1})
    assert (await b.receive_type("error"))["code"] == "forbidden"
    assert await a.nothing()
    assert await stored("general") == [(1, "mine", "alice", None, False)]


@pytest.mark.redis
async def test_delete_by_staff(connect, alice, make_user, general):
    moderator = await database_sync_to_async(make_user)("mod", is_staff=True)
    a, _ = await connect(alice)
    m, _ = await connect(moderator)
    await send_body(a, "spam")
    await m.receive_type("message")
    await m.send({"type": "message.delete", "id": 1})
    assert await m.receive() == {"type": "message.deleted", "id": 1}
    assert await a.receive() == {"type": "message.deleted", "id": 1}
    assert (await stored("general"))[0][4] is True
    # Staff may delete, not edit.
    await send_body(a, "more spam")
    await m.receive_type("message")
    await m.send({"type": "message.edit", "id": 2, "body": "nice"})
    assert (await m.receive_type("error"))["code"] == "forbidden"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"id": 99}, "not_found"),
        ({"id": -3}, "bad_request"),
        ({"id": "1"}, "bad_request"),
        ({"id": None}, "bad_request"),
        ({}, "bad_request"),
    ],
)
@pytest.mark.redis
async def test_delete_refused(connect, alice, general, fields, code):
    a, _ = await connect(alice)
    await send_body(a, "stays")
    await a.send({"type": "message.delete", **fields})
    assert (await a.receive_type("error"))["code"] == code
    assert await stored("general") == [(1, "stays", "alice", None, False)]


# --- read --------------------------------------------------------------------


@database_sync_to_async
def read_mark(user: AbstractBaseUser, room: Room) -> int | None:
    state = ReadState.objects.filter(user=user, room=room).first()
    return None if state is None else state.last_read_number


@pytest.mark.redis
async def test_read_marks_and_never_moves_back(connect, alice, bob, general):
    await bulk_messages(general, bob, 5)
    a, _ = await connect(alice)
    await a.send({"type": "read", "id": 3})
    await sync(a)  # `read` has no answer frame
    assert await read_mark(alice, general) == 3
    await a.send({"type": "read", "id": 2})
    await sync(a)
    assert await read_mark(alice, general) == 3
    await a.send({"type": "read", "id": 5})
    await sync(a)
    assert await read_mark(alice, general) == 5
    # Beyond the newest: read up to the newest.
    await a.send({"type": "read", "id": 10**6})
    await sync(a)
    assert await read_mark(alice, general) == 5
    assert await read_mark(bob, general) is None


@pytest.mark.parametrize(
    "fields", [{"id": "3"}, {"id": -1}, {"id": True}, {"id": 2.5}, {"id": None}, {}]
)
@pytest.mark.redis
async def test_read_with_a_bad_id(connect, alice, bob, general, fields):
    await bulk_messages(general, bob, 5)
    a, _ = await connect(alice)
    await a.send({"type": "read", "id": 2})
    await sync(a)
    await a.send({"type": "read", **fields})
    assert (await a.receive_type("error"))["code"] == "bad_request"
    assert await read_mark(alice, general) == 2
