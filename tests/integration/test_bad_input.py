"""Bad input on a live socket, through real daphne workers, Redis and PostgreSQL.

Every case is checked the same way. The sender (user00, on worker 0) gets the
documented `error` frame or close code. Its socket, or after a close a new one,
then sends a valid message, acknowledged with the room's next id: the socket
stays usable and no id was spent on the bad input. The observer (user01, on
worker 1) must see that message as its next frame but presence: the bad input
reached nobody else. Last, every row of the room in PostgreSQL is exactly the
expected one, bodies compared exactly. Input that is valid, however odd, must
be stored and delivered to both sockets exactly as sent.

Cases follow one another in a shared room while they pass (opening sockets
costs more than most cases); a failed case leaves the next one a fresh room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import redis
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.conftest import REDIS_URL, Cluster, Worker, base_env

# One event loop for the module: the shared sockets live across cases.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SENDER = "user00"
OBSERVER = "user01"
FOLLOW_UP = "still here"
KIB = 1024
MIB = 1024 * KIB
BIGINT_MAX = 2**63 - 1

Row = tuple[int, str, str, str | None, bool, bool]


class Missing:
    """A field left out of the frame."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


@dataclass(frozen=True)
class Raw:
    """A JSON value written as it is, for numbers Python would not write so."""

    text: str


@dataclass(frozen=True)
class Relative:
    """An id counted from the room's newest message, known only when the case runs."""

    offset: int


NEWEST = Relative(0)
BEYOND = Relative(1)


def resolve(value: object, pair: Pair) -> object:
    """`value`, with a Relative id made absolute."""
    return pair.last_id + value.offset if isinstance(value, Relative) else value


def frame_text(frame: dict[str, Any], *, ascii_only: bool = True) -> str:
    """The frame as JSON text, without MISSING fields and with Raw values spliced in."""
    raws: dict[str, str] = {}
    fields: dict[str, Any] = {}
    for key, value in frame.items():
        if isinstance(value, Missing):
            continue
        if isinstance(value, Raw):
            placeholder = f"raw-{len(raws)}-{uuid.uuid4().hex}"
            raws[json.dumps(placeholder)] = value.text
            value = placeholder
        fields[key] = value
    text = json.dumps(fields, ensure_ascii=ascii_only)
    for placeholder, raw in raws.items():
        text = text.replace(placeholder, raw)
    return text


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"the server sent {name}, which is not JSON")


# --- the cluster, shared by the whole module ----------------------------------------


@pytest.fixture(scope="module")
def workers(
    database_url: str, users: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Worker]]:
    """Two daphne workers of this module's own, with limits that stay out of the way."""
    log_dir = tmp_path_factory.mktemp("bad-input")
    prefix = f"it-bad-{uuid.uuid4().hex[:10]}"
    env = base_env(
        database_url,
        CHAT_LAYER_PREFIX=prefix,
        # The cases send a few hundred messages in all: none may be rate_limited,
        # and one token per user must outlive the module.
        CHAT_RATE_LIMIT="10000/10s",
        CHAT_TOKEN_TTL="3600",
    )
    started = [Worker(env, log_dir, f"worker{index}") for index in range(2)]
    try:
        with ThreadPoolExecutor() as pool:
            list(pool.map(Worker.start, started))
        yield started
    finally:
        # Stop them together: each takes a few seconds to shut down.
        for worker in started:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            if worker.process is not None:
                try:
                    worker.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill(signal.SIGKILL)
        # Every key of the site's is under the layer prefix: leave Redis as found.
        with redis.Redis.from_url(REDIS_URL) as client:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)


@pytest.fixture(scope="module")
def tokens(workers: list[Worker]) -> dict[str, str]:
    cluster = Cluster(workers)
    return {name: cluster.token(name) for name in (SENDER, OBSERVER)}


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection to the workers' database, to see what was stored."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def stored(db: psycopg.Connection[Any], slug: str) -> list[Row]:
    """(number, body, author, client_id, edited, deleted) of every row of the room."""
    return [
        tuple(row)
        for row in db.execute(
            "SELECT m.number, m.body, u.username, m.client_id, m.edited,"
            " m.deleted_at IS NOT NULL"
            " FROM chat_message m JOIN chat_room r ON r.id = m.room_id"
            " JOIN auth_user u ON u.id = m.author_id"
            " WHERE r.slug = %s ORDER BY m.number",
            (slug,),
        ).fetchall()
    ]


def read_mark(db: psycopg.Connection[Any], slug: str, username: str) -> int | None:
    """The user's read mark in the room; None when it was never set."""
    row = db.execute(
        "SELECT s.last_read_number FROM chat_readstate s"
        " JOIN chat_room r ON r.id = s.room_id JOIN auth_user u ON u.id = s.user_id"
        " WHERE r.slug = %s AND u.username = %s",
        (slug, username),
    ).fetchone()
    return None if row is None else int(row[0])


def room_create(db: psycopg.Connection[Any], *, kind: str = "public") -> str:
    slug = f"it-{uuid.uuid4().hex[:12]}"
    db.execute(
        "INSERT INTO chat_room (name, slug, description, kind, archived, created,"
        " last_message_number) VALUES (%s, %s, '', %s, false, now(), 0)",
        (slug, slug, kind),
    )
    return slug


# --- sockets ------------------------------------------------------------------------


class Peer:
    """One live socket, reading JSON frames and telling how it was closed."""

    def __init__(self, username: str, connection: Any) -> None:
        self.username = username
        self.connection = connection

    async def send(self, frame: dict[str, Any], *, ascii_only: bool = True) -> None:
        await self.connection.send(frame_text(frame, ascii_only=ascii_only))

    async def send_text(self, text: str) -> None:
        await self.connection.send(text)

    async def send_bytes(self, data: bytes, *, text: bool = False) -> None:
        """`data` as a binary frame, or as it is in a text frame (valid UTF-8 or not)."""
        await self.connection.send(data, text=text)

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next frame but `presence`, which comes as users come and go."""
        while True:
            raw = await asyncio.wait_for(self.connection.recv(), timeout)
            assert isinstance(raw, str), f"{self.username} got a binary frame: {raw!r}"
            frame = json.loads(raw, parse_constant=_refuse_constant)
            assert isinstance(frame, dict), raw
            if frame.get("type") != "presence":
                return frame

    async def close_code(self, timeout: float = 10) -> int | None:
        """The code of the server's close frame; None if it dropped the connection.

        No frame but presence may come before the close.
        """
        try:
            frame = await self.receive(timeout)
        except ConnectionClosed:
            received = self.connection.protocol.close_rcvd
            return None if received is None else int(received.code)
        raise AssertionError(f"{self.username} got {frame} instead of a close")

    async def close(self) -> None:
        await self.connection.close()


def socket_url(worker: Worker, path: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{worker.port}{path}" + (f"?{query}" if query else "")


async def peer_open(
    worker: Worker, username: str, token: str, slug: str, after: str | None = None
) -> tuple[Peer, dict[str, Any]]:
    """A socket to the room, and its welcome."""
    query = f"token={token}" + (f"&after={after}" if after is not None else "")
    connection = await websockets.connect(
        socket_url(worker, f"/ws/rooms/{slug}/", query), max_size=4 * MIB
    )
    peer = Peer(username, connection)
    welcome = await peer.receive()
    assert welcome["type"] == "welcome", welcome
    assert welcome["room"]["slug"] == slug and welcome["user"] == {"username": username}
    return peer, welcome


async def handshake(url: str) -> tuple[str, int | None]:
    """How the server answers a socket that must be refused: ("http", status) or ("close", code)."""
    try:
        connection = await websockets.connect(url, max_size=4 * MIB, open_timeout=15)
    except InvalidStatus as error:
        return "http", error.response.status_code
    try:
        return "close", await Peer("refused", connection).close_code()
    finally:
        await connection.close()


def error_frame(code: str, client_id: str | None, detail: object) -> dict[str, Any]:
    """The error frame the protocol promises; `detail` is whatever text the server chose."""
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


@dataclass
class Pair:
    """The sender's and the observer's sockets in one room, and the rows it must hold."""

    slug: str
    workers: list[Worker]
    tokens: dict[str, str]
    db: psycopg.Connection[Any]
    sender: Peer
    observer: Peer
    rows: list[Row] = field(default_factory=list)
    opened: list[Peer] = field(default_factory=list)
    sent: int = 0

    @property
    def last_id(self) -> int:
        return self.rows[-1][0] if self.rows else 0

    def unique(self, prefix: str) -> str:
        """A client_id not used before in this room: a repeated one would be a resend."""
        self.sent += 1
        return f"{prefix}-{self.sent}"

    def sender_url(self, path: str, query: str = "") -> str:
        token = f"token={self.tokens[SENDER]}"
        return socket_url(self.workers[0], path, f"{token}&{query}" if query else token)

    async def reconnect(self, after: str | None = None) -> dict[str, Any]:
        """A new sender socket, after the old one was closed; its welcome."""
        self.sender, welcome = await peer_open(
            self.workers[0], SENDER, self.tokens[SENDER], self.slug, after
        )
        self.opened.append(self.sender)
        return welcome

    async def accepted(
        self, body: object, stored_body: str, *, client_id: str | None, ascii_only: bool = True
    ) -> dict[str, Any]:
        """A send that is stored as `stored_body` and delivered so to both sockets."""
        number = self.last_id + 1
        frame = {"type": "message.send", "body": body, "client_id": client_id}
        await self.sender.send(frame, ascii_only=ascii_only)
        ack = await self.sender.receive()
        assert ack == {
            "type": "message",
            "id": number,
            "room": self.slug,
            "user": SENDER,
            "body": stored_body,
            "created": ack.get("created"),
            "client_id": client_id,
            "edited": False,
            # The site's extensions (docs/protocol.md): nothing of the kind here.
            "reply_to": None,
            "reactions": [],
            "mentions": [],
            "attachments": [],
        }
        assert isinstance(ack["created"], str) and ack["created"].endswith("Z")
        seen = await self.observer.receive()
        assert seen == {**ack, "client_id": None}
        self.rows.append((number, stored_body, SENDER, client_id, False, False))
        assert stored(self.db, self.slug) == self.rows
        return ack

    async def seed(self, count: int = 1) -> None:
        """Messages of the sender's to refer to by id."""
        for _ in range(count):
            number = self.last_id + 1
            await self.accepted(f"seed {number}", f"seed {number}", client_id=f"seed-{number}")

    async def own_message(self) -> int:
        """The id of the room's newest message, one of the sender's that is not deleted."""
        if not self.rows or self.rows[-1][2] != SENDER or self.rows[-1][5]:
            await self.seed()
        return self.last_id

    def visible(self) -> list[Row]:
        """The rows history and replay show: all but deleted ones."""
        return [row for row in self.rows if not row[5]]

    async def still_usable(self) -> None:
        """A valid send is served with the next id; the observer gets it as its next frame."""
        await self.accepted(FOLLOW_UP, FOLLOW_UP, client_id=self.unique("follow-up"))

    async def refused(
        self, text: str, code: str, *, client_id: str | None = None
    ) -> dict[str, Any]:
        """`text` answered with `error` {code}, echoing `client_id`; nothing else changes."""
        await self.sender.send_text(text)
        error = await self.sender.receive()
        assert error == error_frame(code, client_id, error.get("detail")), text[:300]
        assert isinstance(error["detail"], str) and error["detail"]
        assert stored(self.db, self.slug) == self.rows
        await self.still_usable()
        return error

    async def closed(self, code: int | None) -> None:
        """The sender's socket closed with `code` (None: dropped without a close frame).

        Then a new socket of the sender's is served, and the observer saw none of it.
        """
        assert await self.sender.close_code() == code
        assert stored(self.db, self.slug) == self.rows
        welcome = await self.reconnect()
        assert welcome["last_id"] == (self.last_id or None)
        await self.still_usable()

    async def close(self) -> None:
        for peer in self.opened:
            await peer.close()


async def pair_open(
    workers: list[Worker], tokens: dict[str, str], db: psycopg.Connection[Any]
) -> Pair:
    """A fresh room with the observer's socket, then the sender's."""
    slug = room_create(db)
    observer, _ = await peer_open(workers[1], OBSERVER, tokens[OBSERVER], slug)
    sender, welcome = await peer_open(workers[0], SENDER, tokens[SENDER], slug)
    assert welcome["last_id"] is None
    return Pair(slug, workers, tokens, db, sender, observer, opened=[observer, sender])


@dataclass
class Stage:
    """The module's shared room: cases follow one another in it while they pass."""

    workers: list[Worker]
    tokens: dict[str, str]
    db: psycopg.Connection[Any]
    pair: Pair | None = None
    # A failed case may leave frames unread or rows unaccounted for.
    dirty: bool = False


# Rows a shared room may hold before the next case gets a fresh one, so that
# comparing every row stays cheap.
ROWS_PER_ROOM = 40


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    workers: list[Worker], tokens: dict[str, str], db: psycopg.Connection[Any]
) -> AsyncIterator[Stage]:
    shared = Stage(workers, tokens, db)
    yield shared
    if shared.pair is not None:
        await shared.pair.close()


@pytest_asyncio.fixture(loop_scope="module")
async def pair(stage: Stage, request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    """The shared room's sockets; a fresh room after a failed case or once it is full.

    Opening two sockets costs more than most cases: sharing them keeps the
    module fast, and every case still checks every row of the room.
    """
    current = stage.pair
    if current is None or stage.dirty or len(current.rows) > ROWS_PER_ROOM:
        stage.pair = None
        if current is not None:
            await current.close()
        current = stage.pair = await pair_open(stage.workers, stage.tokens, stage.db)
        stage.dirty = False
    failed = request.session.testsfailed
    yield current
    # The call's report is counted before teardown: a failure shows here.
    stage.dirty = request.session.testsfailed != failed


def message_send(**fields: Any) -> str:
    """A `message.send` frame's text."""
    return frame_text({"type": "message.send", **fields})


# --- frames that are not frames -------------------------------------------------------

NOT_A_FRAME = [
    pytest.param("hello", id="plain-text"),
    pytest.param("{", id="truncated-json"),
    pytest.param("{'type': 'ping'}", id="single-quotes"),
    pytest.param('{"type": "ping",}', id="trailing-comma"),
    pytest.param('{"type": "ping"} {"type": "ping"}', id="two-frames-in-one"),
    pytest.param('\ufeff{"type": "ping"}', id="byte-order-mark"),
    pytest.param("", id="empty-text"),
    pytest.param(" \t\r\n ", id="white-space-text"),
    pytest.param("[]", id="array"),
    pytest.param('["message.send", "hi"]', id="array-of-fields"),
    pytest.param("123", id="number"),
    pytest.param("null", id="null"),
    pytest.param("true", id="bool"),
    pytest.param('"ping"', id="string"),
    pytest.param("{}", id="empty-object"),
    pytest.param('{"body": "no type"}', id="missing-type"),
    pytest.param('{"type": null}', id="type-null"),
    pytest.param('{"type": 5}', id="type-number"),
    pytest.param('{"type": 1.5}', id="type-float"),
    pytest.param('{"type": true}', id="type-bool"),
    pytest.param('{"type": ["ping"]}', id="type-list"),
    pytest.param('{"type": {"type": "ping"}}', id="type-object"),
    pytest.param('{"type": ""}', id="type-empty"),
    pytest.param('{"type": "nope"}', id="type-unknown"),
    pytest.param('{"type": "PING"}', id="type-uppercase"),
    pytest.param('{"type": " ping"}', id="type-padded"),
    pytest.param('{"type": "ping\\u0000"}', id="type-with-nul"),
    pytest.param('{"type": "chat.message", "text": "forged"}', id="type-group-event"),
    pytest.param('{"type": "websocket.close", "code": 1000}', id="type-asgi-event"),
    pytest.param('{"type": "ping", "x": NaN}', id="nan"),
    pytest.param('{"type": "ping", "x": -Infinity}', id="infinity"),
    pytest.param('{"type": "message.send", "body": "a\x01b"}', id="raw-control-in-string"),
    pytest.param('{"type": "message.send", "body": "a\nb"}', id="raw-newline-in-string"),
    pytest.param('{"type": "message.send", "body": "a\x00b"}', id="raw-nul-in-string"),
    pytest.param("[" * 30_000 + "]" * 30_000, id="deep-nesting"),
]


@pytest.mark.parametrize("text", NOT_A_FRAME)
async def test_not_a_frame_is_bad_request(pair: Pair, text: str) -> None:
    await pair.refused(text, "bad_request")


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        pytest.param('{"client_id": "c-1", "body": "hi"}', "c-1", id="missing-type"),
        pytest.param('{"type": "nope", "client_id": "c-1"}', "c-1", id="unknown-type"),
        pytest.param('{"type": 5, "client_id": "c-1"}', "c-1", id="type-number"),
        # Not JSON: the server cannot read a client_id from it.
        pytest.param('{"type": "ping", "client_id": "c-1", "x": NaN}', None, id="nan"),
    ],
)
async def test_a_readable_client_id_is_echoed(pair: Pair, text: str, echo: str | None) -> None:
    await pair.refused(text, "bad_request", client_id=echo)


# --- message.send ---------------------------------------------------------------------

WRONG_TYPES = [
    pytest.param(5, id="number"),
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(1.5, id="float"),
    pytest.param(None, id="null"),
    pytest.param([], id="empty-list"),
    pytest.param(["hi"], id="list"),
    pytest.param({}, id="empty-object"),
    pytest.param({"text": "hi"}, id="object"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
]


@pytest.mark.parametrize("body", [*WRONG_TYPES, pytest.param(MISSING, id="missing")])
async def test_body_of_a_wrong_type(pair: Pair, body: object) -> None:
    await pair.refused(message_send(body=body, client_id="t-1"), "bad_request", client_id="t-1")


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 65, id="65-chars"),
        pytest.param("\U0001f600" * 65, id="65-emoji"),
        pytest.param("x" * 10_000, id="10000-chars"),
    ],
)
async def test_an_invalid_client_id_string_is_refused_and_echoed_as_sent(
    pair: Pair, client_id: str
) -> None:
    await pair.refused(
        message_send(body="hi", client_id=client_id), "bad_request", client_id=client_id
    )


@pytest.mark.parametrize(
    "client_id",
    [
        *(param for param in WRONG_TYPES if param.values[0] is not None),
        # Strings the server never emits: strict JSON peers refuse them.
        pytest.param("a\x00b", id="nul"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
async def test_a_client_id_the_server_cannot_echo_is_refused_without_one(
    pair: Pair, client_id: object
) -> None:
    await pair.refused(message_send(body="hi", client_id=client_id), "bad_request")


@pytest.mark.parametrize(
    ("client_id", "stored_client_id"),
    [
        pytest.param(None, None, id="null-is-absent"),
        pytest.param(MISSING, None, id="missing"),
        pytest.param("x" * 64, "x" * 64, id="64-chars"),
        pytest.param("\U0001f600" * 64, "\U0001f600" * 64, id="64-emoji"),
        pytest.param("<script>\u202e", "<script>\u202e", id="markup-and-bidi"),
    ],
)
async def test_valid_client_ids_are_stored(
    pair: Pair, client_id: object, stored_client_id: str | None
) -> None:
    number = pair.last_id + 1
    await pair.sender.send({"type": "message.send", "body": "hi", "client_id": client_id})
    ack = await pair.sender.receive()
    assert (ack["type"], ack["id"], ack["client_id"]) == ("message", number, stored_client_id)
    seen = await pair.observer.receive()
    assert (seen["type"], seen["id"], seen["client_id"]) == ("message", number, None)
    pair.rows.append((number, "hi", SENDER, stored_client_id, False, False))
    assert stored(pair.db, pair.slug) == pair.rows
    await pair.still_usable()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="space"),
        pytest.param(" \t\n\r\x0b\x0c ", id="ascii-white-space"),
        pytest.param("\u3000\u00a0\u2003\u2028\u2029\u202f\u205f\u0085\u1680", id="unicode-spaces"),
    ],
)
async def test_empty_body(pair: Pair, body: str) -> None:
    await pair.refused(message_send(body=body, client_id="e-1"), "empty", client_id="e-1")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("a" * 4001, id="4001-ascii"),
        pytest.param("\U0001f600" * 4001, id="4001-emoji"),
        pytest.param("e\u0301" * 2000 + "e", id="4001-with-combining"),
        pytest.param(" " + "\u00e9" * 4001 + " ", id="4001-once-stripped"),
        pytest.param("\u20ac" * 20_000, id="20000-below-64-kib"),
    ],
)
async def test_body_too_long(pair: Pair, body: str) -> None:
    text = frame_text({"type": "message.send", "body": body, "client_id": "l-1"}, ascii_only=False)
    assert len(text.encode("utf-8")) <= 64 * KIB
    await pair.refused(text, "too_long", client_id="l-1")


@pytest.mark.parametrize(
    ("body", "stored_body"),
    [
        pytest.param("a" * 4000, "a" * 4000, id="4000-ascii"),
        pytest.param("\U0001f600" * 4000, "\U0001f600" * 4000, id="4000-emoji"),
        pytest.param("e\u0301" * 2000, "e\u0301" * 2000, id="4000-with-combining"),
        pytest.param("\u3000 " + "b" * 4000 + " \n", "b" * 4000, id="4000-once-stripped"),
    ],
)
async def test_body_at_the_limit_is_stored(pair: Pair, body: str, stored_body: str) -> None:
    await pair.accepted(body, stored_body, client_id=pair.unique("ok"), ascii_only=False)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"type": "message.send", "body": "a\\u0000b", "client_id": "n-1"}', id="nul"),
        pytest.param(
            '{"type": "message.send", "body": "\\u0000", "client_id": "n-1"}', id="only-nul"
        ),
        pytest.param(
            '{"type": "message.send", "body": "a\\ud800b", "client_id": "n-1"}', id="lone-high"
        ),
        pytest.param(
            '{"type": "message.send", "body": "\\udfff", "client_id": "n-1"}', id="lone-low"
        ),
        pytest.param(
            '{"type": "message.send", "body": "\\ude00\\ud83d", "client_id": "n-1"}',
            id="reversed-pair",
        ),
    ],
)
async def test_nul_and_unpaired_surrogates_in_body(pair: Pair, text: str) -> None:
    await pair.refused(text, "bad_request", client_id="n-1")


GOOD_BODIES = [
    pytest.param(
        "\U0001f600 \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467", id="emoji"
    ),
    pytest.param("\U0001f1fa\U0001f1e6 \U0001f3f3\ufe0f\u200d\U0001f308", id="flags"),
    pytest.param("\U0001d11e \U0010ffff", id="astral"),
    pytest.param("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", id="hebrew"),
    pytest.param(
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", id="arabic"
    ),
    pytest.param("\u202egpj.exe\u202c \u2067isolated\u2069 \u200fmark\u200e", id="bidi-controls"),
    pytest.param("e\u0301 n\u0303 a\u0300\u0301\u0302\u0303\u0304", id="combining"),
    pytest.param("\u0301starts with a mark", id="leading-combining"),
    pytest.param("Z" + "\u0351\u0352\u0353\u0354" * 60, id="zalgo"),
    pytest.param("<b>bold</b> &amp; &lt;tag&gt; &#x27;", id="html"),
    pytest.param("<script>alert(document.cookie)</script>", id="script"),
    pytest.param('<img src=x onerror="alert(1)">', id="img-onerror"),
    pytest.param("{{ request.user }} {% csrf_token %} ${x} `id`", id="template-syntax"),
    pytest.param("'; DROP TABLE chat_message; --", id="sql"),
    pytest.param("\"'\\n \\u0000 \\", id="quotes-and-backslashes"),
    pytest.param('{"type": "error", "code": "bad_request"}', id="json-in-body"),
    pytest.param("".join(map(chr, [*range(1, 9), *range(14, 32)])), id="c0-controls"),
    pytest.param("\x1b[31mred\x1b[0m \x07\x08\x7f", id="escape-sequences"),
    pytest.param("\x80\x81\x9b\x9f", id="c1-controls"),
    pytest.param("\x1c\x1dx\x1e\x1f", id="separators-are-not-white-space"),
    pytest.param("\u200bzero width\u200b", id="zero-width-space-kept"),
    pytest.param("\ufeffa\ufffeb\uffff", id="bom-and-noncharacters"),
    pytest.param("a\tb\nc\r\nd\u2028e\u3000f", id="inner-white-space"),
]


@pytest.mark.parametrize("ascii_only", [True, False], ids=["json-escapes", "raw-utf8"])
@pytest.mark.parametrize("body", GOOD_BODIES)
async def test_good_text_is_stored_and_delivered_exactly(
    pair: Pair, body: str, ascii_only: bool
) -> None:
    await pair.accepted(body, body, client_id=pair.unique("g"), ascii_only=ascii_only)


async def test_surrounding_white_space_is_stripped(pair: Pair) -> None:
    body = " \t\n\u00a0\u3000 padded \u2029\u0085 "
    await pair.accepted(body, "padded", client_id=pair.unique("w"), ascii_only=False)


async def test_forged_fields_of_a_send_are_ignored(pair: Pair) -> None:
    number = pair.last_id + 1
    client_id = pair.unique("f")
    forged = {
        "type": "message.send",
        "body": "mine",
        "client_id": client_id,
        "id": 10**30,
        "user": OBSERVER,
        "room": "general",
        "edited": True,
        "created": "1970-01-01T00:00:00Z",
    }
    await pair.sender.send(forged)
    ack = await pair.sender.receive()
    assert (ack["id"], ack["user"], ack["room"]) == (number, SENDER, pair.slug)
    assert (ack["edited"], ack["client_id"]) == (False, client_id)
    assert ack["created"] != forged["created"]
    seen = await pair.observer.receive()
    assert seen == {**ack, "client_id": None}
    pair.rows.append((number, "mine", SENDER, client_id, False, False))
    assert stored(pair.db, pair.slug) == pair.rows
    await pair.still_usable()


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


def message_fields(message: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(message[name] for name in ("id", "body", "user", "client_id", "edited"))


def as_seen_by_sender(row: Row) -> tuple[Any, ...]:
    """A stored row as a message object shows it to the sender (client_id: its own only)."""
    number, body, author, client_id, edited, _ = row
    return number, body, author, client_id if author == SENDER else None, edited


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


# --- frames the WebSocket layer or the size limit refuses -----------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"type": "ping"}', id="json-ping"),
        pytest.param(b'{"type": "message.send", "body": "binary", "client_id": "x"}', id="send"),
        pytest.param(b"\xff\xfe\x00\x01", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_binary_frame_is_bad_request(pair: Pair, data: bytes) -> None:
    await pair.sender.send_bytes(data)
    error = await pair.sender.receive()
    # The server never reads a binary frame, so it has no client_id to echo.
    assert error == error_frame("bad_request", None, error.get("detail"))
    await pair.still_usable()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"type": "ping", "x": "\x80"}', id="lone-continuation-byte"),
        pytest.param(b"\xff", id="invalid-byte"),
        pytest.param(b'{"type": "ping", "x": "\xc0\xaf"}', id="overlong-encoding"),
        pytest.param(b'{"type": "ping", "x": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b'{"type": "ping", "x": "\xed\xa0\xbd\xed\xb8\x80"}', id="cesu-8"),
        pytest.param(b'{"type": "ping", "x": "\xf4\x90\x80\x80"}', id="beyond-u-10ffff"),
        pytest.param(b'{"type": "message.send", "body": "\xe2\x82', id="truncated-sequence"),
        pytest.param(
            '{"type": "message.send", "body": "caf\u00e9"}'.encode("latin-1"), id="latin-1"
        ),
    ],
)
async def test_invalid_utf8_in_a_text_frame_drops_the_connection(pair: Pair, data: bytes) -> None:
    # daphne's WebSocket layer (Autobahn, failByDrop) fails such a connection by
    # dropping TCP without a close frame: the client sees 1006, the application
    # never sees the frame.
    await pair.sender.send_bytes(data, text=True)
    await pair.closed(None)


def padded(frame: dict[str, Any], size: int) -> str:
    """`frame` as JSON text of exactly `size` UTF-8 bytes (white space before the brace)."""
    text = json.dumps(frame, ensure_ascii=False)
    pad = size - len(text.encode("utf-8"))
    assert pad >= 0
    return " " * pad + text


async def test_a_frame_of_64_kib_is_served(pair: Pair) -> None:
    await pair.sender.send_text(padded({"type": "ping"}, 64 * KIB))
    assert await pair.sender.receive() == {"type": "pong"}
    number = pair.last_id + 1
    client_id = pair.unique("big")
    text = padded({"type": "message.send", "body": "big frame", "client_id": client_id}, 64 * KIB)
    await pair.sender.send_text(text)
    ack = await pair.sender.receive()
    assert (ack["type"], ack["id"], ack["body"]) == ("message", number, "big frame")
    seen = await pair.observer.receive()
    assert (seen["type"], seen["id"], seen["body"]) == ("message", number, "big frame")
    pair.rows.append((number, "big frame", SENDER, client_id, False, False))
    await pair.still_usable()


async def fragments(size: int, count: int) -> AsyncIterator[str]:
    for _ in range(count):
        yield " " * size


OVERSIZE = [
    pytest.param(
        lambda: padded({"type": "message.send", "body": "x"}, 64 * KIB + 1),
        4009,
        id="text-64-kib+1",
    ),
    pytest.param(
        lambda: json.dumps({"type": "message.send", "body": "\u20ac" * 22_000}, ensure_ascii=False),
        4009,
        id="22000-chars-over-64-kib",
    ),
    pytest.param(lambda: fragments(16 * KIB, 5), 4009, id="fragments-over-64-kib"),
    pytest.param(lambda: b"x" * (64 * KIB + 1), 4009, id="binary-64-kib+1"),
    pytest.param(lambda: " " * (MIB - 16) + '{"type":"ping"}', 4009, id="text-1-mib"),
    # Over daphne's own limit (1 MiB) the WebSocket layer drops the connection
    # without a close frame, before the application sees a byte.
    pytest.param(lambda: " " * (MIB + 1), None, id="text-1-mib+1"),
    pytest.param(lambda: b"x" * (MIB + 1), None, id="binary-1-mib+1"),
    pytest.param(lambda: " " * (4 * MIB), None, id="text-4-mib"),
]


@pytest.mark.parametrize(("make", "code"), OVERSIZE)
async def test_oversize_message_closes(pair: Pair, make: Any, code: int | None) -> None:
    # The server may cut the connection while the client is still writing.
    with contextlib.suppress(ConnectionClosed):
        await pair.sender.connection.send(make())
    await pair.closed(code)


# --- the socket's URL -----------------------------------------------------------------


@pytest.mark.parametrize(
    "slug",
    [
        pytest.param("no-such-room", id="unknown"),
        pytest.param("-", id="hyphen-only"),
        pytest.param("{SLUG}", id="uppercase"),
        pytest.param("a" * 50, id="50-chars-no-such-room"),
        pytest.param("a" * 51, id="51-chars"),
        pytest.param("a" * 5000, id="5000-chars"),
        pytest.param("%00", id="nul"),
        pytest.param("{slug}%00", id="slug-and-nul"),
        pytest.param("{slug}%20", id="slug-and-space"),
        pytest.param("{slug}%0A", id="slug-and-newline"),
        pytest.param("..", id="dot-dot"),
        pytest.param("%2e%2e", id="encoded-dot-dot"),
        pytest.param(".", id="dot"),
        pytest.param("caf\u00e9", id="unicode"),
        pytest.param("caf%C3%A9", id="encoded-unicode"),
        pytest.param("%ff", id="encoded-invalid-utf8"),
        pytest.param("%", id="bare-percent"),
        pytest.param("general%27%20OR%201=1", id="sql"),
        pytest.param("%3Cscript%3E", id="markup"),
    ],
)
async def test_room_urls_that_name_no_room_close_4404(pair: Pair, slug: str) -> None:
    slug = slug.replace("{slug}", pair.slug).replace("{SLUG}", pair.slug.upper())
    assert await handshake(pair.sender_url(f"/ws/rooms/{slug}/")) == ("close", 4404)
    await pair.still_usable()


async def test_a_private_room_of_others_closes_4404(pair: Pair) -> None:
    private = room_create(pair.db, kind="private")
    assert await handshake(pair.sender_url(f"/ws/rooms/{private}/")) == ("close", 4404)
    await pair.still_usable()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/ws/rooms/{slug}", id="no-trailing-slash"),
        pytest.param("/ws/rooms//", id="empty-slug"),
        pytest.param("/ws/rooms/{slug}%2Fx/", id="encoded-slash"),
        pytest.param("/ws/rooms/{slug}/extra/", id="extra-segment"),
        pytest.param("/ws/room/{slug}/", id="wrong-prefix"),
        pytest.param("/ws/rooms/{slug}/%0A", id="trailing-newline"),
        pytest.param("/ws/rooms/a b/", id="raw-space"),
    ],
)
async def test_paths_no_room_matches_are_refused_cleanly(pair: Pair, path: str) -> None:
    kind, code = await handshake(pair.sender_url(path.replace("{slug}", pair.slug)))
    # Refused, never a server error: closed like any unknown room (4404), or an
    # HTTP 4xx at the handshake.
    clean = (kind, code) == ("close", 4404) or (kind == "http" and 400 <= (code or 0) < 500)
    assert clean, f"{path} was answered {kind} {code}, not a clean refusal"
    await pair.still_usable()


@pytest.mark.parametrize(
    "after",
    [
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="word"),
        pytest.param("", id="empty"),
        pytest.param("1.5", id="fraction"),
        pytest.param("1e3", id="exponent"),
        pytest.param("+1", id="raw-plus"),
        pytest.param("%2B1", id="plus"),
        pytest.param("0x1", id="hex"),
        pytest.param("1_000", id="underscore"),
        pytest.param("%201", id="leading-space"),
        pytest.param("1%20", id="trailing-space"),
        pytest.param("%00", id="nul"),
        pytest.param("1%00", id="digit-and-nul"),
        pytest.param("%EF%BC%91", id="fullwidth-digit"),
        pytest.param("%D9%A1", id="arabic-indic-digit"),
    ],
)
async def test_a_malformed_after_closes_4400(pair: Pair, after: str) -> None:
    url = pair.sender_url(f"/ws/rooms/{pair.slug}/", f"after={after}")
    assert await handshake(url) == ("close", 4400)
    await pair.still_usable()


@pytest.mark.parametrize(
    "after",
    [
        pytest.param("0", id="zero"),
        pytest.param("007", id="leading-zeros"),
        pytest.param(str(BIGINT_MAX), id="bigint-max"),
        pytest.param(str(2**63), id="2**63"),
        pytest.param("9" * 40, id="40-digits"),
        pytest.param("9" * 5000, id="5000-digits"),
    ],
)
async def test_whole_numbers_of_any_size_are_a_valid_after(pair: Pair, after: str) -> None:
    await pair.own_message()
    await pair.sender.close()
    welcome = await pair.reconnect(after=after)
    assert welcome["last_id"] == pair.last_id
    # Every visible message after `after` is replayed (none beyond the newest),
    # then live messages arrive as ever. (int() refuses over 4300 digits.)
    resume = int(after) if len(after) < 100 else None
    for row in pair.visible():
        if resume is not None and row[0] > resume:
            replayed = await pair.sender.receive()
            assert replayed["type"] == "message", replayed
            assert message_fields(replayed) == as_seen_by_sender(row)
    await pair.still_usable()
