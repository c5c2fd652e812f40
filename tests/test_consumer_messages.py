"""The room socket's conversation (docs/protocol-v1.md, The WebSocket): the welcome,
message.send and its acknowledgement, resends by client_id, typing and ping.

On the whole ASGI stack, as tests/consumer_helpers.py tells.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from channels.db import database_sync_to_async

from chat.actions import live
from chat.models import Room
from tests.consumer_helpers import carol as carol
from tests.consumer_helpers import create, delete, room_last_number, send_body, stored, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


@pytest.fixture
def random_room(db: None) -> Room:
    room, _ = Room.objects.get_or_create(
        slug="random", defaults={"name": "Random", "kind": Room.Kind.PUBLIC}
    )
    return room


# --- welcome -----------------------------------------------------------------


@pytest.mark.redis
async def test_welcome_is_the_first_frame(connect, alice, general):
    sock, welcome = await connect(alice, expect_welcome=False)
    welcome = await sock.receive()
    assert welcome == {
        "type": "welcome",
        "room": {
            "slug": "general",
            "name": "General",
            "kind": "public",
            "archived": False,
            "live_comments": False,
        },
        "user": {"username": "alice"},
        "online": welcome["online"],
        "last_id": None,
        # An extension (docs/protocol.md): the reader's mute here, none.
        "mute": None,
    }
    assert "alice" in welcome["online"]
    assert await sock.nothing()


@pytest.mark.redis
async def test_welcome_last_id_counts_deleted_messages(connect, alice, general):
    for body in ("one", "two", "three"):
        await create(general, alice, body)
    await delete(general, 3, alice)
    sock, welcome = await connect(alice)
    assert welcome["last_id"] == 3
    # No `after`: nothing is replayed.
    assert await sock.nothing()


@pytest.mark.redis
async def test_welcome_of_a_private_room(connect, alice, db):
    room = await database_sync_to_async(Room.objects.create)(
        slug="staff", name="Staff", kind=Room.Kind.PRIVATE
    )
    await database_sync_to_async(room.members.add)(alice)
    _, welcome = await connect(alice, "staff")
    assert welcome["room"] == {
        "slug": "staff",
        "name": "Staff",
        "kind": "private",
        "archived": False,
        "live_comments": False,
    }
    assert welcome["user"] == {"username": "alice"}


# --- message.send ------------------------------------------------------------


@pytest.mark.redis
async def test_send_is_stored_then_broadcast(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await a.send({"type": "message.send", "body": "  hello bob  ", "client_id": "c-1"})
    mine = await a.receive_type("message")
    # The acknowledgement means the row is committed.
    assert await stored("general") == [(1, "hello bob", "alice", "c-1", False)]
    theirs = await b.receive_type("message")
    assert mine.pop("client_id") == "c-1"
    assert theirs.pop("client_id") is None
    assert mine == theirs
    assert mine["id"] == 1
    assert mine["room"] == "general"
    assert mine["user"] == "alice"
    assert mine["body"] == "hello bob"
    assert mine["edited"] is False
    assert mine["created"].endswith("Z")
    created = datetime.fromisoformat(mine["created"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
    assert await a.nothing() and await b.nothing()


@pytest.mark.redis
async def test_every_socket_of_the_author_sees_its_client_id(connect, alice, bob, general):
    a1, _ = await connect(alice)
    a2, _ = await connect(alice)
    b, _ = await connect(bob)
    await send_body(a1, "hi", "mine")
    assert (await a2.receive_type("message"))["client_id"] == "mine"
    assert (await b.receive_type("message"))["client_id"] is None


@pytest.mark.redis
async def test_send_without_client_id(connect, alice, general):
    a, _ = await connect(alice)
    ack = await send_body(a, "plain")
    assert ack["client_id"] is None
    await a.send({"type": "message.send", "body": "null id", "client_id": None})
    assert (await a.receive_type("message"))["id"] == 2
    assert await stored("general") == [
        (1, "plain", "alice", None, False),
        (2, "null id", "alice", None, False),
    ]


@pytest.mark.redis
async def test_body_is_stripped_of_unicode_white_space(connect, alice, general):
    a, _ = await connect(alice)
    ack = await send_body(a, "\u3000\u00a0\u2003\n\t inner  space \u2028\u200a\r\n")
    assert ack["body"] == "inner  space"
    assert (await stored("general"))[0][1] == "inner  space"


@pytest.mark.redis
async def test_ids_count_per_room(connect, alice, bob, general, random_room):
    ag, _ = await connect(alice, "general")
    ar, _ = await connect(alice, "random")
    bg, _ = await connect(bob, "general")
    assert (await send_body(ag, "g1"))["id"] == 1
    assert (await send_body(ar, "r1"))["id"] == 1
    assert (await send_body(ag, "g2"))["id"] == 2
    assert (await send_body(ar, "r2"))["id"] == 2
    assert (await send_body(ag, "g3"))["id"] == 3
    assert [(await bg.receive_type("message"))["id"] for _ in range(3)] == [1, 2, 3]
    assert await bg.nothing()  # nothing of `random` reaches `general`
    assert [row[:2] for row in await stored("general")] == [(1, "g1"), (2, "g2"), (3, "g3")]
    assert [row[:2] for row in await stored("random")] == [(1, "r1"), (2, "r2")]
    assert await room_last_number("general") == 3
    assert await room_last_number("random") == 2


# --- idempotent client_id ------------------------------------------------------


@pytest.mark.redis
async def test_resend_returns_the_stored_message_to_that_socket_only(connect, alice, bob, general):
    a1, _ = await connect(alice)
    a2, _ = await connect(alice)
    b, _ = await connect(bob)
    first = await send_body(a1, "once", "dup")
    assert (await a2.receive_type("message"))["id"] == 1
    assert (await b.receive_type("message"))["id"] == 1

    # The resend (even with another body) answers the stored message.
    again = await send_body(a1, "twice?", "dup")
    assert again == first
    assert again["body"] == "once" and again["client_id"] == "dup"
    assert await a1.nothing()
    assert await a2.nothing()
    assert await b.nothing()
    assert await stored("general") == [(1, "once", "alice", "dup", False)]

    # Numbering goes on from the one stored message.
    assert (await send_body(a1, "next", "other"))["id"] == 2
    assert (await b.receive_type("message"))["id"] == 2


@pytest.mark.redis
async def test_same_client_id_from_another_user_or_room_is_new(
    connect, alice, bob, general, random_room
):
    a, _ = await connect(alice, "general")
    ar, _ = await connect(alice, "random")
    b, _ = await connect(bob, "general")
    assert (await send_body(a, "from alice", "same"))["id"] == 1
    assert (await b.receive_type("message"))["id"] == 1
    from_bob = await send_body(b, "from bob", "same")
    assert from_bob["id"] == 2 and from_bob["user"] == "bob" and from_bob["client_id"] == "same"
    seen = await a.receive_type("message")
    assert seen["id"] == 2 and seen["client_id"] is None
    in_random = await send_body(ar, "in random", "same")
    assert in_random["id"] == 1 and in_random["room"] == "random"
    assert await stored("general") == [
        (1, "from alice", "alice", "same", False),
        (2, "from bob", "bob", "same", False),
    ]
    assert await stored("random") == [(1, "in random", "alice", "same", False)]


# --- typing ------------------------------------------------------------------


@pytest.mark.redis
async def test_typing_reaches_the_others_once_per_interval(
    connect, alice, bob, carol, general, monkeypatch
):
    monkeypatch.setattr(live, "TYPING_INTERVAL", 0.5)
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    c, _ = await connect(carol)
    await a.send({"type": "typing"})
    assert await b.receive() == {"type": "typing", "user": "alice"}
    assert await c.receive() == {"type": "typing", "user": "alice"}
    assert await a.nothing()
    await a.send({"type": "typing"})  # within the interval: not broadcast
    await sync(a)
    assert await b.nothing() and await c.nothing()
    await asyncio.sleep(0.5)
    await a.send({"type": "typing"})
    assert await b.receive() == {"type": "typing", "user": "alice"}
    assert await a.nothing()


@pytest.mark.redis
async def test_typing_within_two_seconds_is_not_broadcast(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await a.send({"type": "typing"})
    assert await b.receive() == {"type": "typing", "user": "alice"}
    await asyncio.sleep(1)
    await a.send({"type": "typing"})
    await sync(a)
    assert await b.nothing()
    # bob's own typing is not limited by alice's.
    await b.send({"type": "typing"})
    assert await a.receive() == {"type": "typing", "user": "bob"}


@pytest.mark.redis
async def test_typing_is_limited_per_user_not_per_socket(connect, alice, bob, general):
    a1, _ = await connect(alice)
    a2, _ = await connect(alice)
    b, _ = await connect(bob)
    await a1.send({"type": "typing"})
    await a2.send({"type": "typing"})
    await sync(a2)
    assert await b.receive() == {"type": "typing", "user": "alice"}
    assert await b.nothing()
    # Not echoed to the typist's other socket either.
    assert await a1.nothing(0.1) and await a2.nothing(0.1)


# --- ping --------------------------------------------------------------------


@pytest.mark.redis
async def test_ping_pong(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await a.send({"type": "ping"})
    assert await a.receive() == {"type": "pong"}
    assert await b.nothing()
