"""The bench for bad input on a live socket (tests/integration/test_bad_input_*.py):
real daphne workers, Redis and PostgreSQL.

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
Each test module starts its own two workers (the fixtures are module-scoped).
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import redis

from tests.integration.conftest import REDIS_URL, Cluster, Worker, base_env

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


def room_create(db: psycopg.Connection[Any], *, kind: str = "public") -> str:
    slug = f"it-{uuid.uuid4().hex[:12]}"
    db.execute(
        "INSERT INTO chat_room (name, slug, description, kind, archived, created,"
        " last_message_number) VALUES (%s, %s, '', %s, false, now(), 0)",
        (slug, slug, kind),
    )
    return slug


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


def message_fields(message: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(message[name] for name in ("id", "body", "user", "client_id", "edited"))


def as_seen_by_sender(row: Row) -> tuple[Any, ...]:
    """A stored row as a message object shows it to the sender (client_id: its own only)."""
    number, body, author, client_id, edited, _ = row
    return number, body, author, client_id if author == SENDER else None, edited


def padded(frame: dict[str, Any], size: int) -> str:
    """`frame` as JSON text of exactly `size` UTF-8 bytes (white space before the brace)."""
    text = json.dumps(frame, ensure_ascii=False)
    pad = size - len(text.encode("utf-8"))
    assert pad >= 0
    return " " * pad + text
