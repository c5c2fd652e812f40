"""A socket's plain message on PostgreSQL: stored on the event loop, in one round trip.

Most messages have no reply, no @name and no file. For those, on PostgreSQL,
the socket does not hop to the database thread: one psycopg AsyncConnection
per event loop sends, in one pipelined round trip, the transaction that
chat.domain.writes.message_create would run, with the same rules in SQL:

    BEGIN
    lock the author's row                 (one author's sends in turn)
    the author's state                    (active, not muted, no resend of this client_id)
    the author's messages of the window   (fewer than CHAT_RATE_LIMIT)
    the room's next number                (not archived; a broadcast room: staff only)
    the insert
    COMMIT

and builds the message's frames from the row (chat.domain.events.plain_message_event),
with no model instance. When it stores nothing (a resend, a refusal of any
kind) it returns None, and message_create decides on the database thread,
with the exact reason: both paths give the same answers
(tests/test_plain.py). It works behind PgBouncer in transaction mode as
it is: the query's parameters are bound on the client and nothing is prepared on
the server. A database error is raised as Django's DatabaseError (the socket
answers `unavailable`), and the next call connects again.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections
from django.utils import timezone

from chat.domain.author_state import author_state_query
from chat.models import Message, Room
from chat.platform import db


@dataclass(frozen=True)
class Stored:
    """What the round trip stored: the message's number, its room's slug, its time."""

    number: int
    room_slug: str
    created: datetime


def usable() -> bool:
    """Whether the default database is PostgreSQL, where this path runs."""
    return connections["default"].vendor == "postgresql"


@functools.cache
def _insert_sql(with_client_id: bool) -> str:
    rooms, messages = Room._meta.db_table, Message._meta.db_table
    state_sql, _ = author_state_query(
        author_id=0, room_id=0, client_id="" if with_client_id else None
    )
    clear = "is_active AND NOT muted" + (" AND resent IS NULL" if with_client_id else "")
    return (
        f"WITH state AS ({state_sql}),"  # noqa: S608  (model table names and compiled SQL)
        f" recent AS (SELECT 1 FROM {messages} WHERE author_id = %s AND created > %s LIMIT %s),"
        f" room AS (UPDATE {rooms} SET last_message_number = last_message_number + 1"
        "  WHERE id = %s AND NOT archived AND (kind <> %s OR %s)"
        f"  AND EXISTS (SELECT 1 FROM state WHERE {clear})"
        "  AND (SELECT count(*) FROM recent) < %s"
        "  RETURNING slug, last_message_number),"
        f" inserted AS (INSERT INTO {messages}"
        "  (room_id, number, author_id, body, created, edited, client_id, reactions_version)"
        "  SELECT %s, last_message_number, %s, %s, %s, false, %s, 0 FROM room RETURNING id)"
        " SELECT room.slug, room.last_message_number FROM room, inserted"
    )


@functools.cache
def _transaction_sql(with_client_id: bool) -> str:
    """The lock and the insert in one transaction, sent as one query (its parameters are
    bound on the client: nothing is prepared on the server, so PgBouncer in
    transaction mode passes it as it is). Each statement reads the database as it is
    when that statement starts: the count of the insert sees the sends committed by
    whoever held the author's lock before."""
    return f"BEGIN; {_lock_sql()}; {_insert_sql(with_client_id)}; COMMIT"


@functools.cache
def _lock_sql() -> str:
    users = get_user_model()._meta.db_table
    return f"SELECT 1 FROM {users} WHERE id = %s FOR UPDATE"  # noqa: S608  (a model table name)


class _Connection:
    """The event loop's connection: made when first needed, dropped on any error; one
    round trip on it at a time (`turn`), as the database thread takes one call at a time."""

    def __init__(self) -> None:
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.lock = asyncio.Lock()
        self.turn = asyncio.Lock()

    async def get(self) -> psycopg.AsyncConnection[Any]:
        if self.connection is None or self.connection.closed:
            async with self.lock:
                if self.connection is None or self.connection.closed:
                    params = connections["default"].get_connection_params()
                    for name in ("cursor_factory", "context", "prepare_threshold"):
                        params.pop(name, None)
                    self.connection = await psycopg.AsyncConnection.connect(
                        autocommit=True, prepare_threshold=None, **params
                    )
        return self.connection

    async def drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close()


_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connection] = (
    weakref.WeakKeyDictionary()
)


def _connection() -> _Connection:
    loop = asyncio.get_running_loop()
    found = _connections.get(loop)
    if found is None:
        found = _connections[loop] = _Connection()
    return found


async def connection_close() -> None:
    """Close the running loop's connection, if it has one (a test's loop, at its end)."""
    found = _connections.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.drop()


async def plain_store(
    *, room_id: int, author_id: int, may_broadcast: bool, body: str, client_id: str | None
) -> Stored | None:
    """Store a plain message in one round trip; what was stored, or None when nothing was
    (message_create then decides why). Database errors: django.db.DatabaseError."""
    count, seconds = settings.CHAT_RATE_LIMIT
    now = timezone.now()
    _, state_params = author_state_query(author_id=author_id, room_id=room_id, client_id=client_id)
    params = [
        *state_params,
        author_id,
        now - timedelta(seconds=seconds),
        count,
        room_id,
        Room.Kind.BROADCAST.value,
        may_broadcast,
        count,
        room_id,
        author_id,
        body,
        now,
        client_id,
    ]
    holder = _connection()
    try:
        async with holder.turn:
            connection = await holder.get()
            cursor = psycopg.AsyncClientCursor(connection)
            # BEGIN; the lock; the insert; COMMIT: one query message, one round trip.
            await cursor.execute(_transaction_sql(client_id is not None), [author_id, *params])
            # Its results in order: BEGIN's, the lock's, the insert's, COMMIT's.
            cursor.nextset()
            cursor.nextset()
            row = await cursor.fetchone()
    except psycopg.Error as error:
        # Whatever failed (the database, the network, a statement), the connection may
        # be left in a failed transaction: the next call starts on a new one.
        await holder.drop()
        db.failed_elsewhere()  # the database thread's connection may be gone too
        raise DatabaseError(str(error)) from error
    if row is None:
        return None
    return Stored(number=int(row[1]), room_slug=str(row[0]), created=now)
