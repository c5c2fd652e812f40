"""The two live sockets of every bad-input case (tests/integration/test_bad_input_*.py):
the sender's and the observer's, in a room shared by the module's cases while they pass.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import websockets
from websockets.exceptions import ConnectionClosed

from tests.integration.bad_input_helpers import (
    FOLLOW_UP,
    MIB,
    OBSERVER,
    SENDER,
    Row,
    _refuse_constant,
    frame_text,
    room_create,
    stored,
)
from tests.integration.conftest import Worker

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
