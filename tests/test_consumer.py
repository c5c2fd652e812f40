"""The room socket (docs/protocol-v1.md, The WebSocket) on the real ASGI stack and Redis layer.

Every socket goes through chatsite.asgi.application (Origin gate, sessions,
token auth, routing) and the channels-redis layer of tests/settings.py; the
database is the real PostgreSQL test database. Bad input lives in
test_consumer_errors.py.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import OperationalError, transaction
from django.test import Client

from chat import protocol
from chat.actions import live, plain
from chat.domain import direct, events, presence, snapshots, writes
from chat.models import Message, ReadState, Room
from chat.protocol import CloseCode
from chat.sockets import room as room_socket
from chat.web import middleware
from chat.web.tokens import token_issue
from tests.conftest import Socket
from tests.servers import PrivateRedis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]

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
def random_room(db: None) -> Room:
    room, _ = Room.objects.get_or_create(
        slug="random", defaults={"name": "Random", "kind": Room.Kind.PUBLIC}
    )
    return room


@pytest.fixture
def carol(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("carol")


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


# --- history -----------------------------------------------------------------


async def history(sock: Socket, **fields: Any) -> dict[str, Any]:
    await sock.send({"type": "history", **fields})
    return await sock.receive_type("history")


def ids(frame: dict[str, Any]) -> list[int]:
    return [message["id"] for message in frame["messages"]]


@pytest.mark.redis
async def test_history_pages_back(connect, alice, general):
    await bulk_messages(general, alice, 120)
    a, welcome = await connect(alice)
    assert welcome["last_id"] == 120

    newest = await history(a)
    assert ids(newest) == list(range(71, 121))  # default limit 50, ascending
    assert newest["has_more"] is True
    assert newest["messages"][0]["body"] == "m71"
    assert newest["messages"][0]["room"] == "general"

    older = await history(a, before=71)
    assert ids(older) == list(range(21, 71))
    assert older["has_more"] is True

    oldest = await history(a, before=21)
    assert ids(oldest) == list(range(1, 21))
    assert oldest["has_more"] is False

    assert ids(await history(a, limit=100)) == list(range(21, 121))
    one = await history(a, limit=1, before=2)
    assert ids(one) == [1] and one["has_more"] is False
    exact = await history(a, limit=20, before=21)
    assert ids(exact) == list(range(1, 21)) and exact["has_more"] is False
    # A cursor beyond the newest id pages from the end.
    assert ids(await history(a, before=10**30, limit=2)) == [119, 120]


@pytest.mark.redis
async def test_history_pages_forward_and_around_a_permalink(connect, alice, general):
    await bulk_messages(general, alice, 120)
    a, _ = await connect(alice)

    forward = await history(a, after=100, limit=10)
    assert ids(forward) == list(range(101, 111))
    assert (forward["has_more"], forward["has_newer"]) == (True, True)
    last = await history(a, after=110, limit=50)
    assert ids(last) == list(range(111, 121))
    assert (last["has_more"], last["has_newer"]) == (False, False)

    around = await history(a, around=40, limit=10)
    assert ids(around) == list(range(35, 45))
    assert (around["has_older"], around["has_newer"], around["has_more"]) == (True, True, True)
    start = await history(a, around=2, limit=10)
    assert ids(start) == list(range(1, 11))
    assert (start["has_older"], start["has_newer"]) == (False, True)
    assert ids(await history(a, around=10**30, limit=3)) == [118, 119, 120]


@pytest.mark.parametrize(
    "fields",
    [
        {"before": 5, "after": 1},
        {"around": 5, "before": 9},
        {"around": -1},
        {"after": "1"},
        {"around": 1.5},
    ],
)
@pytest.mark.redis
async def test_history_with_a_bad_cursor_is_bad_request(connect, alice, general, fields):
    a, _ = await connect(alice)
    await a.send({"type": "history", **fields})
    error = await a.receive_type("error")
    assert error["code"] == "bad_request"
    # The socket stays open and answers the next frame.
    assert (await history(a))["messages"] == []


@pytest.mark.redis
async def test_history_of_an_empty_room(connect, alice, general):
    a, _ = await connect(alice)
    assert await history(a) == {"type": "history", "messages": [], "has_more": False}


@pytest.mark.redis
async def test_history_leaves_deleted_messages_out(connect, alice, general):
    await bulk_messages(general, alice, 60)
    await delete(general, 60, alice)
    await delete(general, 30, alice)
    a, _ = await connect(alice)
    newest = await history(a)
    expected = [n for n in range(1, 60) if n != 30][-50:]
    assert ids(newest) == expected
    assert newest["has_more"] is True
    assert ids(await history(a, before=12)) == list(range(1, 12))


@pytest.mark.redis
async def test_history_shows_the_client_id_to_its_author_only(connect, alice, bob, general):
    await create(general, alice, "hers", client_id="a-1")
    await create(general, bob, "his", client_id="b-1")
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    assert [m["client_id"] for m in (await history(a))["messages"]] == ["a-1", None]
    assert [m["client_id"] for m in (await history(b))["messages"]] == [None, "b-1"]


@pytest.mark.parametrize(
    "fields",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"limit": True},
        {"limit": -1},
        {"limit": 1.5},
        {"limit": "10"},
        {"before": "x"},
        {"before": -1},
        {"before": False},
        {"before": [1]},
    ],
)
@pytest.mark.redis
async def test_history_bad_fields(connect, alice, general, fields):
    await create(general, alice, "one")
    a, _ = await connect(alice)
    await a.send({"type": "history", **fields})
    error = await a.receive_type("error")
    assert error["code"] == "bad_request"
    assert isinstance(error["detail"], str)
    assert ids(await history(a)) == [1]  # still usable


# --- resume ------------------------------------------------------------------


@pytest.mark.redis
async def test_resume_replays_missed_messages_once_in_order(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    for n in (1, 2, 3):
        assert (await send_body(a, f"a{n}"))["id"] == n
        assert (await b.receive_type("message"))["id"] == n
    await a.close()
    # Sent while alice is away.
    assert (await send_body(b, "b4", "x4"))["id"] == 4
    assert (await send_body(b, "b5"))["id"] == 5

    a, welcome = await connect(alice, after=3)
    assert welcome["last_id"] == 5
    replay = [await a.receive_type("message") for _ in range(2)]
    assert [(m["id"], m["body"], m["client_id"]) for m in replay] == [
        (4, "b4", None),
        (5, "b5", None),
    ]
    assert await a.nothing()
    assert (await send_body(b, "live"))["id"] == 6
    assert (await a.receive_type("message"))["id"] == 6
    assert await a.nothing()


@pytest.mark.redis
async def test_resume_from_zero_replays_everything_but_deleted(connect, alice, bob, general):
    for n in range(1, 6):
        await create(general, bob if n % 2 else alice, f"m{n}", client_id=f"c{n}")
    await delete(general, 2, alice)
    await delete(general, 5, bob)
    a, welcome = await connect(alice, after=0)
    assert welcome["last_id"] == 5
    replay = await messages_until_quiet(a)
    assert [(m["id"], m["user"], m["client_id"]) for m in replay] == [
        (1, "bob", None),
        (3, "bob", None),
        (4, "alice", "c4"),
    ]
    # The deleted message keeps its number: the next one is 6.
    b, _ = await connect(bob)
    assert (await send_body(b, "six"))["id"] == 6
    assert (await a.receive_type("message"))["id"] == 6


@pytest.mark.redis
async def test_resume_beyond_the_newest_id_replays_nothing_and_stays_live(
    connect, alice, bob, general
):
    await create(general, bob, "one")
    await create(general, bob, "two")
    a, welcome = await connect(alice, after=99)
    assert welcome["last_id"] == 2
    assert await a.nothing()
    b, _ = await connect(bob)
    assert (await send_body(b, "three"))["id"] == 3
    live = await a.receive_type("message")
    assert (live["id"], live["body"]) == (3, "three")
    # A number beyond what the database stores is just "beyond", however long.
    a2, welcome = await connect(alice, after="9" * 30)
    assert welcome["last_id"] == 3
    a3, welcome = await connect(alice, after="1" * 5000)
    assert welcome["last_id"] == 3
    assert (await send_body(b, "four"))["id"] == 4
    assert (await a2.receive_type("message"))["id"] == 4
    assert (await a3.receive_type("message"))["id"] == 4
    assert await a2.nothing(0.1) and await a3.nothing(0.1)


@pytest.mark.redis
async def test_resume_with_the_newest_id_replays_nothing(connect, alice, general):
    await create(general, alice, "one")
    a, welcome = await connect(alice, after=1)
    assert welcome["last_id"] == 1
    assert await a.nothing()


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "", "%2B1", "%201", "1e3", "0x10", "٣"])
async def test_resume_with_a_malformed_after_closes_4400(connect, alice, general, after):
    a, _ = await connect(alice, after=after, expect_welcome=False)
    assert await a.closed_with() == 4400
    assert await stored("general") == []


@pytest.mark.redis
async def test_resume_of_more_than_1000_missed_starts_with_a_gap(connect, alice, bob, general):
    await bulk_messages(general, bob, 1100)
    a, welcome = await connect(alice, after=50)
    assert welcome["last_id"] == 1100
    gap = await a.receive()
    assert gap == {"type": "gap", "after": 50, "before": 101}
    replay = [await a.receive_type("message") for _ in range(1000)]
    assert [m["id"] for m in replay] == list(range(101, 1101))
    assert replay[0]["body"] == "m101"
    assert await a.nothing()
    b, _ = await connect(bob)
    assert (await send_body(b, "live"))["id"] == 1101
    assert (await a.receive_type("message"))["id"] == 1101


@pytest.mark.redis
async def test_resume_of_exactly_1000_missed_has_no_gap(connect, alice, bob, general):
    await bulk_messages(general, bob, 1000)
    a, _ = await connect(alice, after=0)
    first = await a.receive()
    assert first["type"] == "message" and first["id"] == 1
    rest = [await a.receive_type("message") for _ in range(999)]
    assert [m["id"] for m in rest] == list(range(2, 1001))
    assert await a.nothing()


@pytest.mark.redis
async def test_resume_while_others_send_has_no_hole_and_no_duplicate(connect, alice, bob, general):
    b, _ = await connect(bob)
    for n in range(1, 11):
        await send_body(b, f"before {n}")

    async def bob_sends() -> None:
        for n in range(11, 41):
            await b.send({"type": "message.send", "body": f"during {n}"})
            await asyncio.sleep(0.005)

    async def alice_resumes() -> Socket:
        a, _ = await connect(alice, after=5)
        return a

    _, a = await asyncio.gather(bob_sends(), alice_resumes())
    frames = await messages_until_quiet(a, quiet=0.5)
    assert all(frame["type"] == "message" for frame in frames), frames
    assert [frame["id"] for frame in frames] == list(range(6, 41))


# --- hole filling --------------------------------------------------------------


@pytest.mark.redis
async def test_a_message_ahead_of_its_predecessors_is_preceded_by_them(
    connect, alice, bob, general
):
    a, welcome = await connect(alice)
    assert welcome["last_id"] is None
    # Stored, never broadcast: as if two workers committed and one broadcast was lost.
    await create(general, bob, "one")
    two = await create(general, bob, "two")
    three = await create(general, alice, "three", client_id="c3")
    layer = get_channel_layer()
    await layer.group_send(general.group_name, events.chat_message(three))
    frames = [await a.receive_type("message") for _ in range(3)]
    assert [(m["id"], m["body"], m["client_id"]) for m in frames] == [
        (1, "one", None),
        (2, "two", None),
        (3, "three", "c3"),
    ]
    # The late broadcast of 2 is dropped: no duplicate.
    await layer.group_send(general.group_name, events.chat_message(two))
    assert await a.nothing()
    await sync(a)


@pytest.mark.redis
async def test_a_message_ahead_is_held_for_the_broadcast_behind_it(
    connect, alice, bob, general, monkeypatch
):
    """Another worker's broadcast a moment late: both go out in order, nothing is read."""
    a, _ = await connect(alice)
    one = await create(general, bob, "one")
    two = await create(general, bob, "two")
    reads: list[tuple[int, int]] = []
    real = room_socket.messages_missing

    async def counted(*, room_id: int, after: int, before: int) -> list[Message]:
        reads.append((after, before))
        return await real(room_id=room_id, after=after, before=before)

    monkeypatch.setattr(room_socket, "messages_missing", counted)
    layer = get_channel_layer()
    await layer.group_send(general.group_name, events.chat_message(two))
    await asyncio.sleep(django_settings.CHAT_HOLE_WAIT / 4)
    await layer.group_send(general.group_name, events.chat_message(one))
    assert [(await a.receive_type("message"))["id"] for _ in range(2)] == [1, 2]
    assert reads == []
    # Nothing more later, when the wait would have run out.
    assert await a.nothing(timeout=django_settings.CHAT_HOLE_WAIT * 2)


@pytest.mark.redis
async def test_a_hole_that_outlives_the_wait_is_read_from_the_database(
    connect, alice, bob, general
):
    a, _ = await connect(alice)
    await create(general, bob, "one")
    await create(general, bob, "two")
    three = await create(general, bob, "three")
    four = await create(general, bob, "four")
    layer = get_channel_layer()
    started = time.monotonic()
    await layer.group_send(general.group_name, events.chat_message(three))
    await layer.group_send(general.group_name, events.chat_message(four))
    assert [(await a.receive_type("message"))["id"] for _ in range(4)] == [1, 2, 3, 4]
    assert time.monotonic() - started >= django_settings.CHAT_HOLE_WAIT
    assert await a.nothing()


@pytest.mark.redis
async def test_an_edit_of_a_held_message_follows_the_message(connect, alice, bob, general):
    a, _ = await connect(alice)
    one = await create(general, bob, "one")
    two = await create(general, bob, "two")
    layer = get_channel_layer()
    await layer.group_send(general.group_name, events.chat_message(two))
    edited = await database_sync_to_async(writes.message_edit)(
        room_id=general.pk, number=2, user=bob, body="two, edited"
    )
    event = events.chat_message_edited(
        edited.message, mentions=edited.mentions, mentions_changed=edited.mentions_changed
    )
    await layer.group_send(general.group_name, event)
    frames = [await a.receive() for _ in range(3)]
    assert [(f["type"], f["id"], f["body"]) for f in frames] == [
        ("message", 1, "one"),
        ("message", 2, "two, edited"),
        ("message.edited", 2, "two, edited"),
    ]
    # The late broadcast of 1 adds nothing.
    await layer.group_send(general.group_name, events.chat_message(one))
    assert await a.nothing()


@pytest.mark.redis
async def test_hole_filling_leaves_deleted_messages_out(connect, alice, bob, general):
    a, _ = await connect(alice)
    await create(general, bob, "one")
    await create(general, bob, "two")
    three = await create(general, bob, "three")
    await delete(general, 2, bob)
    await get_channel_layer().group_send(general.group_name, events.chat_message(three))
    assert [(await a.receive_type("message"))["id"] for _ in range(2)] == [1, 3]
    assert await a.nothing()


@pytest.mark.redis
async def test_a_lost_last_message_arrives_by_the_tail_check(connect, alice, bob, general):
    """No later message shows the hole: the watcher's look at the room catches it up."""
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    # Stored, never broadcast: as if the layer dropped the last message of a burst.
    await create(general, bob, "one")
    await create(general, bob, "two", client_id="c2")
    # Within two of the watcher's intervals (CHAT_LAYER_CHECK_INTERVAL, 2 s) and a margin:
    # the check catches up to what the room had at the check before.
    assert [(await a.receive_type("message", timeout=8))["id"] for _ in range(2)] == [1, 2]
    frames = [await b.receive_type("message", timeout=8) for _ in range(2)]
    assert [(m["id"], m["client_id"]) for m in frames] == [(1, None), (2, "c2")]
    # And the late broadcast adds nothing.
    await get_channel_layer().group_send(
        general.group_name,
        events.chat_message(await database_sync_to_async(Message.objects.for_wire().get)(number=2)),
    )
    assert await a.nothing() and await b.nothing()


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.redis
async def test_a_failing_handler_closes_the_socket_4011_and_cleans_up(
    connect, alice, bob, general, monkeypatch, caplog
):
    """An unexpected error ends the socket with 4011 (reconnect), never leaving it in the room.

    1011, the standard code for it, is one daphne refuses to send.
    """
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    async def broken(self, frame):
        raise RuntimeError("unexpected")

    monkeypatch.setitem(room_socket.RoomConsumer.handlers, protocol.Ping, broken)
    caplog.clear()
    await a.send({"type": "ping"})
    assert await a.closed_with() == CloseCode.INTERNAL_ERROR == 4011
    await a.close()  # the server's disconnect, as daphne sends it after the close
    # One ERROR, with the traceback of what failed.
    [record] = errors_logged(caplog)
    assert record.exc_info is not None and "RuntimeError: unexpected" in record.exc_text
    layer = get_channel_layer()
    members = await layer.connection(0).zrange(layer._group_key(general.group_name), 0, -1)
    assert len(members) == 1  # bob's socket alone
    assert (await send_body(b, "still here"))["id"] == 1


async def test_a_failure_while_connecting_is_accepted_and_closed_4011(
    connect, alice, general, monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("unexpected at the welcome")

    monkeypatch.setattr(room_socket, "socket_snapshot", broken)
    a, _ = await connect(alice, expect_welcome=False)
    # Accepted first: a refused handshake would not tell the client why.
    assert await a.closed_with() == CloseCode.INTERNAL_ERROR
    [record] = errors_logged(caplog)
    assert "RuntimeError: unexpected at the welcome" in record.exc_text


@pytest.mark.redis
async def test_a_failure_in_the_disconnect_ends_the_consumer_quietly(
    connect, alice, general, monkeypatch, caplog
):
    a, _ = await connect(alice)

    async def broken(*args, **kwargs):
        raise RuntimeError("unexpected at the leave")

    monkeypatch.setattr(presence, "presence_leave", broken)
    caplog.clear()
    # The application ends without raising (daphne would log it as a crash).
    await a.close()
    assert a.communicator.future.done() and a.communicator.future.exception() is None
    [record] = errors_logged(caplog)
    assert "RuntimeError: unexpected at the leave" in record.exc_text


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


# --- ping --------------------------------------------------------------------


@pytest.mark.redis
async def test_ping_pong(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await a.send({"type": "ping"})
    assert await a.receive() == {"type": "pong"}
    assert await b.nothing()


# --- access ------------------------------------------------------------------


@database_sync_to_async
def session_cookie(user: AbstractBaseUser) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


async def test_anonymous_is_closed_4401(connect, general):
    sock, _ = await connect(None, expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.parametrize("token", ["garbage", "", "a:b:c"])
async def test_bad_token_is_closed_4401(connect, general, token):
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_tampered_token_is_closed_4401(connect, alice, bob, general):
    good = await sync_to_async(token_issue)(user=alice)
    _, stamp, signature = good.rsplit(":", 2)
    forged = signing.dumps({"u": bob.pk}, salt="chat.token").split(":")[0]
    sock, _ = await connect(None, token=f"{forged}:{stamp}:{signature}", expect_welcome=False)
    assert await sock.closed_with() == 4401


def token_issued_ago(user: AbstractBaseUser, seconds: int, monkeypatch: Any) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(
            signing.TimestampSigner,
            "timestamp",
            lambda self: signing.b62_encode(int(time.time()) - seconds),
        )
        return token_issue(user=user)


@pytest.mark.redis
async def test_expired_token_is_closed_4401(connect, alice, general, monkeypatch):
    ttl = django_settings.CHAT_TOKEN_TTL
    fresh = token_issued_ago(alice, ttl - 30, monkeypatch)
    _, welcome = await connect(None, token=fresh)
    assert welcome["user"] == {"username": "alice"}
    expired = token_issued_ago(alice, ttl + 5, monkeypatch)
    sock, _ = await connect(None, token=expired, expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_token_ttl_is_a_setting(connect, alice, general, settings, monkeypatch):
    token = token_issued_ago(alice, 20, monkeypatch)
    settings.CHAT_TOKEN_TTL = 10
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_token_of_a_deactivated_user_is_closed_4403(connect, alice, general):
    token = await sync_to_async(token_issue)(user=alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4403


async def test_token_after_a_password_change_is_closed_4401(connect, alice, general):
    token = await sync_to_async(token_issue)(user=alice)
    alice.set_password("another one entirely")
    await database_sync_to_async(alice.save)()
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.redis
async def test_session_cookie_with_an_allowed_origin(connect, alice, general):
    cookie = await session_cookie(alice)
    sock, welcome = await connect(None, headers=[ORIGIN, cookie])
    assert welcome["user"] == {"username": "alice"}
    assert (await send_body(sock, "via cookie"))["user"] == "alice"
    assert await stored("general") == [(1, "via cookie", "alice", None, False)]


async def test_session_cookie_without_origin_is_closed_4401(connect, alice, general):
    cookie = await session_cookie(alice)
    sock, _ = await connect(None, headers=[cookie], expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_session_of_a_deactivated_user_is_closed_4401(connect, alice, general):
    cookie = await session_cookie(alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    sock, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.parametrize(
    "value", [b"abcdefgh\x00ijk", b"x" * 5000, b"\xff\xfe12345678", b"", b"short"]
)
async def test_a_bogus_session_cookie_is_closed_4401(connect, general, value):
    name = django_settings.SESSION_COOKIE_NAME.encode()
    cookie = (b"cookie", name + b"=" + value)
    sock, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await sock.closed_with() == 4401


def unavailable(*args: Any, **kwargs: Any) -> Any:
    """Stands in for a database call while the database is down."""
    raise OperationalError("the database is down")


async def unavailable_async(*args: Any, **kwargs: Any) -> Any:
    """Stands in for chat.actions.plain's round trip while the database is down."""
    raise OperationalError("the database is down")


def database_down(patch: pytest.MonkeyPatch) -> None:
    """Both ways a socket stores a message fail, as with the database down."""
    patch.setattr(writes, "message_create", unavailable)
    patch.setattr(plain, "plain_store", unavailable_async)


async def test_database_down_at_authentication_is_4013(connect, alice, general, monkeypatch):
    monkeypatch.setattr(middleware, "token_check", unavailable)
    sock, _ = await connect(alice, expect_welcome=False)
    assert await sock.closed_with() == 4013
    cookie = await session_cookie(alice)
    monkeypatch.setattr(middleware, "get_user", database_sync_to_async(unavailable))
    sock, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await sock.closed_with() == 4013


async def test_database_down_at_connect_is_4013(connect, alice, general, monkeypatch):
    monkeypatch.setattr(snapshots, "room_snapshot", unavailable)
    sock, _ = await connect(alice, expect_welcome=False)
    assert await sock.closed_with() == 4013


@pytest.mark.redis
async def test_database_down_at_send_is_unavailable(connect, alice, bob, general, monkeypatch):
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    with monkeypatch.context() as patch:
        database_down(patch)
        await a.send({"type": "message.send", "body": "lost?", "client_id": "retry-me"})
        error = await a.receive_type("error")
        assert (error["code"], error["client_id"]) == ("unavailable", "retry-me")
    assert await b.nothing()
    # The client resends: stored once, now.
    ack = await send_body(a, "lost?", "retry-me")
    assert (ack["id"], ack["client_id"]) == (1, "retry-me")
    assert (await b.receive_type("message"))["id"] == 1


@pytest.mark.redis
async def test_an_outage_is_one_warning_when_it_starts_and_one_when_it_ends(
    connect, alice, general, monkeypatch, caplog
):
    """An outage answered by design is no error: no traceback per refused frame."""
    a, _ = await connect(alice)
    caplog.clear()
    with monkeypatch.context() as patch:
        database_down(patch)
        for n in range(3):
            await a.send({"type": "message.send", "body": "x", "client_id": f"o{n}"})
            assert (await a.receive_type("error"))["code"] == "unavailable"
    assert (await send_body(a, "back", "o0"))["id"] == 1
    records = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "chat.platform.outages"
    ]
    assert [level for level, _ in records] == ["WARNING", "WARNING"]
    assert records[0][1].startswith("database unavailable")
    assert "database back after" in records[1][1] and "3 answers" in records[1][1]
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]


async def test_origin_without_a_session_is_closed_4401(connect, general):
    sock, _ = await connect(None, headers=[ORIGIN], expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"null", b"http://localhost.evil.example", b"ftp://localhost"],
)
async def test_foreign_origin_is_refused_at_the_handshake(connect, alice, general, origin):
    cookie = await session_cookie(alice)
    _, welcome = await connect(None, headers=[(b"origin", origin), cookie])
    assert welcome is None  # connect() answered (False, ...): HTTP 403
    token = await sync_to_async(token_issue)(user=alice)
    _, welcome = await connect(None, token=token, headers=[(b"origin", origin)])
    assert welcome is None  # a token does not pass a foreign page either


@pytest.mark.redis
async def test_token_with_an_allowed_origin(connect, alice, general):
    _, welcome = await connect(alice, headers=[ORIGIN])
    assert welcome["user"] == {"username": "alice"}


@pytest.mark.redis
async def test_private_room_is_for_members_only(connect, alice, bob, db):
    room = await database_sync_to_async(Room.objects.create)(
        slug="secret", name="Secret", kind=Room.Kind.PRIVATE
    )
    await database_sync_to_async(room.members.add)(alice)
    sock, _ = await connect(bob, "secret", expect_welcome=False)
    assert await sock.closed_with() == 4404
    a, welcome = await connect(alice, "secret")
    assert welcome["room"]["kind"] == "private"
    assert (await send_body(a, "members only"))["id"] == 1


@pytest.mark.redis
async def test_direct_room_is_for_its_two_members(connect, alice, bob, carol, db):
    room = await database_sync_to_async(direct.direct_room_open)(user=alice, username="bob")
    sock, _ = await connect(carol, room.slug, expect_welcome=False)
    assert await sock.closed_with() == 4404
    a, welcome = await connect(alice, room.slug)
    assert welcome["room"]["kind"] == "direct"
    b, _ = await connect(bob, room.slug)
    await send_body(a, "psst")
    assert (await b.receive_type("message"))["body"] == "psst"


@pytest.mark.parametrize("slug", ["nowhere", "General", "a" * 51, "%00"])
async def test_unknown_room_is_closed_4404(connect, alice, general, slug):
    sock, _ = await connect(alice, slug, expect_welcome=False)
    assert await sock.closed_with() == 4404


@pytest.mark.parametrize("path", ["/ws/rooms/general", "/ws/rooms//", "/ws/rooms/a/b/", "/ws/x/"])
async def test_a_path_that_names_no_room_is_closed_4404(alice, path):
    from chatsite.asgi import application

    token = await sync_to_async(token_issue)(user=alice)
    communicator = WebsocketCommunicator(application, f"{path}?token={token}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected  # accepted, so that the client can read the code
    assert await Socket(communicator).closed_with() == CloseCode.NOT_FOUND
    await communicator.disconnect()


@pytest.mark.redis
async def test_archived_room_is_read_only(connect, alice, bob, general):
    await create(general, bob, "before the archive")
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(archived=True)
    a, welcome = await connect(alice)
    b, _ = await connect(bob)
    assert welcome["room"]["archived"] is True
    assert welcome["last_id"] == 1
    assert ids(await history(a)) == [1]
    await a.send({"type": "message.send", "body": "too late", "client_id": "late"})
    error = await a.receive_type("error")
    assert (error["code"], error["client_id"]) == ("room_archived", "late")
    await b.send({"type": "message.edit", "id": 1, "body": "edit"})
    assert (await b.receive_type("error"))["code"] == "room_archived"
    await b.send({"type": "message.delete", "id": 1})
    assert (await b.receive_type("error"))["code"] == "room_archived"
    assert await a.nothing() and await b.nothing()
    assert await stored("general") == [(1, "before the archive", "bob", None, False)]
    assert await room_last_number("general") == 1


@pytest.mark.redis
async def test_room_archived_while_connected(connect, alice, general):
    a, _ = await connect(alice)
    await send_body(a, "one")
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(archived=True)
    await a.send({"type": "message.send", "body": "two"})
    assert (await a.receive_type("error"))["code"] == "room_archived"
    assert await stored("general") == [(1, "one", "alice", None, False)]


# --- the idle socket ---------------------------------------------------------


@pytest.mark.redis
async def test_an_idle_socket_still_receives(connect, alice, bob, general):
    """redis-py 8's default 5 s socket timeout would kill idle sockets (chatsite/settings.py)."""
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await asyncio.sleep(30)
    assert (await send_body(b, "still there?"))["id"] == 1
    message = await a.receive_type("message")
    assert (message["id"], message["body"]) == (1, "still there?")
    await sync(a)


# --- Redis restarts ------------------------------------------------------------


@pytest.fixture
def private_redis(settings: Any, tmp_path: Path) -> Iterator[PrivateRedis]:
    """The channel layer on a redis-server of its own (never the shared one).

    Request it before `connect`, so that the sockets are closed before it stops.
    """
    server = PrivateRedis(tmp_path)
    server.start()
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = server.url
    # Assigning CHANNEL_LAYERS sends setting_changed, which empties the
    # layer cache; clear it anyway so that no test ever reaches the shared server.
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    settings.CHAT_LAYER_CHECK_INTERVAL = 0.2
    settings.CHAT_LAYER_TIMEOUT = 2.0
    try:
        yield server
    finally:
        server.stop()
        channel_layers.backends.clear()


@pytest.mark.redis
async def test_redis_restart_closes_sockets_with_4012(private_redis, connect, alice, bob, general):
    assert get_channel_layer().hosts[0]["address"] == private_redis.url
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await send_body(a, "before")
    await b.receive_type("message")

    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    started = time.monotonic()
    assert await a.closed_with(timeout=5) == 4012
    assert await b.closed_with(timeout=5) == 4012
    assert time.monotonic() - started < 5

    # Redis is back: a new socket works, and resuming recovers what was missed.
    a2, welcome = await connect(alice, after=0)
    assert welcome["last_id"] == 1
    assert (await a2.receive_type("message"))["body"] == "before"
    b2, _ = await connect(bob)
    ack = await send_body(b2, "after", "c-after")
    assert (ack["id"], ack["client_id"]) == (2, "c-after")
    assert (await a2.receive_type("message"))["id"] == 2
    assert await stored("general") == [
        (1, "before", "alice", None, False),
        (2, "after", "bob", "c-after", False),
    ]
    # Stays open and live afterwards (no stale close from the restart).
    await asyncio.sleep(1)
    await sync(a2)
    assert (await send_body(a2, "later"))["id"] == 3
    assert (await b2.receive_type("message"))["id"] == 3


@pytest.mark.redis
async def test_socket_opened_while_redis_is_down_is_closed_4013(
    private_redis, connect, alice, general
):
    await asyncio.to_thread(private_redis.stop)
    sock, welcome = await connect(alice, expect_welcome=False)
    assert sock.communicator is not None
    assert await sock.closed_with(timeout=8) == 4013

    await asyncio.to_thread(private_redis.start)
    a, welcome = await connect(alice)
    assert welcome["last_id"] is None
    assert (await send_body(a, "back"))["id"] == 1
    await asyncio.sleep(1)
    await sync(a)


@pytest.mark.redis
async def test_a_socket_never_stays_deaf_after_a_quick_restart(
    private_redis, connect, alice, bob, general
):
    """Whichever notices first, the reader or the epoch watch, the socket is closed."""
    a, _ = await connect(alice)
    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    assert await a.closed_with(timeout=5) == 4012
    b, _ = await connect(bob)
    assert (await send_body(b, "hello again"))["id"] == 1


@pytest.mark.redis
async def test_new_socket_right_after_the_restart_is_not_closed(
    private_redis, connect, alice, bob, general
):
    """A socket that joined the restarted Redis is not deaf: the watch must not close it."""
    a, _ = await connect(alice)
    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    b, welcome = await connect(bob)
    assert welcome is not None
    assert await a.closed_with(timeout=5) == 4012
    await asyncio.sleep(1)  # several looks of the epoch watch
    await sync(b)
    assert (await send_body(b, "still open"))["id"] == 1


def set_epoch(server: PrivateRedis, value: str) -> None:
    """What a restart looks like to the epoch watch: another epoch key."""
    client = redis.Redis(port=server.port)
    client.set(f"{get_channel_layer().prefix}:epoch", value)
    client.close()


@pytest.mark.redis
async def test_the_watch_closes_the_sockets_before_an_epoch_change_only(
    private_redis, connect, alice, bob, general
):
    a, _ = await connect(alice)
    await asyncio.to_thread(set_epoch, private_redis, "another")
    # Joined after the change (before the watch's next look): not closed.
    b, _ = await connect(bob)
    assert await a.closed_with(timeout=3) == 4012
    await asyncio.sleep(1)
    await sync(b)
    assert (await send_body(b, "fine"))["id"] == 1


@pytest.mark.redis
async def test_a_restart_seen_while_connecting_closes_after_the_accept(
    private_redis, connect, alice, general, monkeypatch
):
    """Never a close before the accept (a refused handshake), never a deaf socket."""
    snapshot = snapshots.room_snapshot

    def slow_snapshot(**kwargs: Any) -> snapshots.Snapshot:
        set_epoch(private_redis, "restarted meanwhile")
        time.sleep(1)  # the watch looks every 0.2 s
        return snapshot(**kwargs)

    monkeypatch.setattr(snapshots, "room_snapshot", slow_snapshot)
    sock, _ = await connect(alice, expect_welcome=False)
    assert sock.communicator.response_headers is not None  # accepted
    assert await sock.closed_with(timeout=5) == 4012
