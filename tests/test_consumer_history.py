"""The room socket's reads of the past (docs/protocol-v1.md, The WebSocket): history
pages, and resume after a reconnect with `after=`.

On the whole ASGI stack, as tests/consumer_helpers.py tells.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Socket
from tests.consumer_helpers import (
    bulk_messages,
    create,
    delete,
    history,
    ids,
    messages_until_quiet,
    send_body,
    stored,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


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
