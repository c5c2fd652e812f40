"""Bad input on a live socket: ids of message.edit, message.delete and read that are
missing, malformed or out of range, and history's limits and cursors.

Every case is checked as tests/integration/bad_input_helpers.py tells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.integration.bad_input_helpers import (
    BIGINT_MAX,
    MISSING,
    OBSERVER,
    SENDER,
    WRONG_TYPES,
    Raw,
    as_seen_by_sender,
    frame_text,
    message_fields,
    stored,
)
from tests.integration.bad_input_helpers import db as db  # a fixture
from tests.integration.bad_input_helpers import tokens as tokens  # a fixture
from tests.integration.bad_input_helpers import workers as workers  # a fixture
from tests.integration.bad_input_sockets import Pair
from tests.integration.bad_input_sockets import pair as pair  # a fixture
from tests.integration.bad_input_sockets import stage as stage  # a fixture

# One event loop for the module: the shared sockets live across cases.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@dataclass(frozen=True)
class Relative:
    """An id counted from the room's newest message, known only when the case runs."""

    offset: int


NEWEST = Relative(0)


BEYOND = Relative(1)


def resolve(value: object, pair: Pair) -> object:
    """`value`, with a Relative id made absolute."""
    return pair.last_id + value.offset if isinstance(value, Relative) else value


def read_mark(db: psycopg.Connection[Any], slug: str, username: str) -> int | None:
    """The user's read mark in the room; None when it was never set."""
    row = db.execute(
        "SELECT s.last_read_number FROM chat_readstate s"
        " JOIN chat_room r ON r.id = s.room_id JOIN auth_user u ON u.id = s.user_id"
        " WHERE r.slug = %s AND u.username = %s",
        (slug, username),
    ).fetchone()
    return None if row is None else int(row[0])


# --- ids of message.edit, message.delete and read -------------------------------------


# JSON allows any number of digits; Python's parser refuses over 4300, so such a
# frame is "not JSON" to the server and it cannot read the client_id from it.
UNPARSEABLE = Raw("9" * 5000)


# (name, id, code of edit and delete, code of read: None when `read` takes it)
IDS: list[tuple[str, object, str, str | None]] = [
    ("missing", MISSING, "bad_request", "bad_request"),
    ("string", "1", "bad_request", "bad_request"),
    ("word", "abc", "bad_request", "bad_request"),
    ("float", 1.5, "bad_request", "bad_request"),
    ("exponent", Raw("1e2"), "bad_request", "bad_request"),
    ("infinite", Raw("1e400"), "bad_request", "bad_request"),
    ("5000-digits", UNPARSEABLE, "bad_request", "bad_request"),
    ("null", None, "bad_request", "bad_request"),
    ("list", [1], "bad_request", "bad_request"),
    ("object", {"id": 1}, "bad_request", "bad_request"),
    ("true", True, "bad_request", "bad_request"),
    ("false", False, "bad_request", "bad_request"),
    # A negative number is not a whole number: bad_request. For edit and delete
    # a whole number that names no message is not_found (docs/protocol.md); read
    # takes any, clamped to the newest message, without an answer.
    ("negative", -1, "bad_request", "bad_request"),
    ("most-negative", -(2**63), "bad_request", "bad_request"),
    ("zero", 0, "not_found", None),
    ("beyond-newest", BEYOND, "not_found", None),
    ("bigint-max", BIGINT_MAX, "not_found", None),
    ("2**63", 2**63, "not_found", None),
    ("10**30", 10**30, "not_found", None),
]


def id_frame(kind: str, value: object, pair: Pair) -> str:
    frame: dict[str, Any] = {"type": kind, "id": resolve(value, pair), "client_id": "i-1"}
    if kind == "message.edit":
        frame["body"] = "edited"
    return frame_text(frame)


def echo_of(value: object) -> str | None:
    return None if value is UNPARSEABLE else "i-1"


@pytest.mark.parametrize("kind", ["message.edit", "message.delete"])
@pytest.mark.parametrize(
    ("value", "code"), [pytest.param(value, code, id=name) for name, value, code, _ in IDS]
)
async def test_edit_and_delete_with_a_bad_id(
    pair: Pair, kind: str, value: object, code: str
) -> None:
    # A message of the sender's to miss; refused() checks that no row changed.
    await pair.own_message()
    await pair.refused(id_frame(kind, value, pair), code, client_id=echo_of(value))


@pytest.mark.parametrize(
    ("value", "code"), [pytest.param(value, code, id=name) for name, value, _, code in IDS]
)
async def test_read_with_a_bad_or_out_of_range_id(
    pair: Pair, value: object, code: str | None
) -> None:
    newest = await pair.own_message()
    mark = read_mark(pair.db, pair.slug, SENDER)
    if code is None:
        number = resolve(value, pair)
        assert isinstance(number, int)
        # `read` has no answer: the next frame is the follow-up's acknowledgement.
        await pair.sender.send_text(id_frame("read", number, pair))
        await pair.still_usable()
        # Clamped to the newest message, and a mark never moves backwards.
        assert read_mark(pair.db, pair.slug, SENDER) == max(mark or 0, min(number, newest))
    else:
        await pair.refused(id_frame("read", value, pair), code, client_id=echo_of(value))
        assert read_mark(pair.db, pair.slug, SENDER) == mark


async def test_edit_and_delete_of_a_deleted_message_are_not_found(pair: Pair) -> None:
    number = await pair.own_message()
    await pair.sender.send({"type": "message.delete", "id": number})
    assert await pair.sender.receive() == {"type": "message.deleted", "id": number}
    assert await pair.observer.receive() == {"type": "message.deleted", "id": number}
    pair.rows[-1] = (*pair.rows[-1][:5], True)
    assert stored(pair.db, pair.slug) == pair.rows
    for kind in ("message.edit", "message.delete"):
        await pair.refused(id_frame(kind, number, pair), "not_found", client_id="i-1")


@pytest.mark.parametrize("kind", ["message.edit", "message.delete"])
async def test_edit_and_delete_of_another_users_message_are_forbidden(
    pair: Pair, kind: str
) -> None:
    number = pair.last_id + 1
    client_id = pair.unique("o")
    await pair.observer.send({"type": "message.send", "body": "theirs", "client_id": client_id})
    assert (await pair.observer.receive())["id"] == number
    seen = await pair.sender.receive()
    assert (seen["id"], seen["body"], seen["client_id"]) == (number, "theirs", None)
    pair.rows.append((number, "theirs", OBSERVER, client_id, False, False))
    await pair.refused(id_frame(kind, number, pair), "forbidden", client_id="i-1")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        *(pytest.param(param.values[0], "bad_request", id=param.id) for param in WRONG_TYPES),
        pytest.param(MISSING, "bad_request", id="missing"),
        pytest.param("a\x00b", "bad_request", id="nul"),
        pytest.param("\ud800", "bad_request", id="lone-surrogate"),
        pytest.param("", "empty", id="empty"),
        pytest.param(" \u3000\n", "empty", id="white-space"),
        pytest.param("a" * 4001, "too_long", id="4001-chars"),
    ],
)
async def test_edit_with_a_bad_body(pair: Pair, body: object, code: str) -> None:
    number = await pair.own_message()
    frame = {"type": "message.edit", "id": number, "body": body, "client_id": "b-1"}
    await pair.refused(frame_text(frame), code, client_id="b-1")


# --- history --------------------------------------------------------------------------

BAD_LIMITS = [
    pytest.param(0, id="zero"),
    pytest.param(101, id="101"),
    pytest.param(-1, id="negative"),
    pytest.param(10**30, id="10**30"),
    pytest.param("10", id="string"),
    pytest.param(1.5, id="float"),
    pytest.param(Raw("1e1"), id="exponent"),
    pytest.param(Raw("1e400"), id="infinite"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param([10], id="list"),
    pytest.param({}, id="object"),
]


BAD_BEFORES = [
    pytest.param(-1, id="negative"),
    pytest.param(-(2**63), id="most-negative"),
    pytest.param("5", id="string"),
    pytest.param(1.5, id="float"),
    pytest.param(Raw("-1e400"), id="infinite"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param([10], id="list"),
    pytest.param({}, id="object"),
]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *(pytest.param("limit", param.values[0], id=f"limit-{param.id}") for param in BAD_LIMITS),
        *(pytest.param("before", p.values[0], id=f"before-{p.id}") for p in BAD_BEFORES),
    ],
)
async def test_history_out_of_range_or_not_a_number(pair: Pair, name: str, value: object) -> None:
    frame = frame_text({"type": "history", name: value, "client_id": "h-1"})
    await pair.refused(frame, "bad_request", client_id="h-1")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"limit": None}, id="limit-null-is-absent"),
        pytest.param({"before": None}, id="before-null-is-absent"),
        pytest.param({"before": 0}, id="before-zero"),
        pytest.param({"before": NEWEST}, id="before-newest"),
        pytest.param({"before": BEYOND}, id="before-beyond-newest"),
        pytest.param({"before": BIGINT_MAX}, id="before-bigint-max"),
        pytest.param({"before": 2**63}, id="before-2**63"),
        pytest.param({"before": 10**30}, id="before-10**30"),
        pytest.param({"limit": 1}, id="limit-1"),
        pytest.param({"limit": 100}, id="limit-100"),
        pytest.param({"before": NEWEST, "limit": 1}, id="before-newest-limit-1"),
    ],
)
async def test_history_edges_are_answered(pair: Pair, fields: dict[str, Any]) -> None:
    while len(pair.visible()) < 2:
        await pair.seed()
    fields = {name: resolve(value, pair) for name, value in fields.items()}
    await pair.sender.send({"type": "history", **fields})
    history = await pair.sender.receive()
    # The `limit` newest visible messages before `before` (beyond the newest
    # id: the newest page), ascending; has_more says older ones exist.
    before, limit = fields.get("before"), fields.get("limit") or 50
    older = [row for row in pair.visible() if before is None or row[0] < before]
    assert history == {
        "type": "history",
        "messages": history.get("messages"),
        "has_more": len(older) > limit,
    }
    assert [message_fields(message) for message in history["messages"]] == [
        as_seen_by_sender(row) for row in older[-limit:]
    ]
    await pair.still_usable()
