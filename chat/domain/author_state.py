"""The author's state before a message is stored, as one query the ORM compiles once.

Read in the write's transaction by both paths that store a message:
chat.domain.writes.message_create on the database thread, and chat.actions.plain
on the event loop (PostgreSQL), which sends the same SQL inside its one round
trip. The query, its parameters and its columns are defined here alone, so the
two cannot drift apart; tests/test_plain.py proves they give the same answers
(`test_its_frames_are_the_twins_to_the_byte`, `test_refusals_are_the_twins`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, OuterRef, Subquery

from chat.domain.mutes import mute_end_query, mute_state, mute_words, mutes_query
from chat.errors import ChatError
from chat.models import Message
from chat.protocol import CloseCode


def author_may_write(*, author_id: int, room_id: int) -> None:
    """Refuse a deactivated author (closing the socket, 4403) and a muted one (`muted`).

    Read in the write's transaction, so that a moderator's decision holds from
    its commit on, whatever the open sockets have heard yet.
    """
    author_check(
        author_state(author_id=author_id, room_id=room_id), author_id=author_id, room_id=room_id
    )


def author_state(
    *, author_id: int, room_id: int, client_id: str | None = None
) -> dict[str, Any] | None:
    """The author's is_active and mutes in the room and, with a client_id, the id
    of the author's message in the room that already has it (`resent`, or None): one
    query, as a dict by AUTHOR_STATE_COLUMNS, or None for no such user."""
    sql, params = author_state_query(author_id=author_id, room_id=room_id, client_id=client_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    columns = _compiled(client_id is not None).columns
    return None if row is None else dict(zip(columns, row, strict=True))


def author_state_query(
    *, author_id: int, room_id: int, client_id: str | None
) -> tuple[str, list[Any]]:
    """The author-state query's SQL (compiled once per process) and its parameters;
    chat.actions.plain sends it inside its round trip."""
    compiled = _compiled(client_id is not None)
    values = {"author_id": author_id, "room_id": room_id, "client_id": client_id}
    return compiled.sql, [
        values[param] if isinstance(param, _Parameter) else param for param in compiled.params
    ]


def author_state_columns(*, with_client_id: bool) -> tuple[str, ...]:
    """The names of the query's columns, in order, as the ORM compiled them: `is_active`,
    `muted_until`, `muted`, and `resent` with a client_id."""
    return _compiled(with_client_id).columns


def author_check(state: dict[str, Any] | None, *, author_id: int, room_id: int) -> None:
    """Refuse, from its state, a deactivated (or unknown) author and a muted one."""
    if state is None or not state["is_active"]:
        raise ChatError("forbidden", "this account is deactivated", close_code=CloseCode.FORBIDDEN)
    if state["muted"]:
        # The refusal's words name the mute that keeps the author silent longest.
        mute = mute_state(user_id=author_id, room_id=room_id)
        raise ChatError("muted", mute_words(mute))


class _Parameter(str):
    """The name of a parameter of a query compiled once (the others are constants)."""


# Stand-ins for the query's parameters while it is compiled: each appears in
# the parameter list the ORM makes, and tells which value goes in its place.
_SENTINELS: dict[str, Any] = {
    "author_id": -7_000_001,
    "room_id": -7_000_002,
    "client_id": "\x01client_id",
}


@dataclass(frozen=True)
class _Compiled:
    """The SQL; its parameters (a _Parameter naming the value to put in, or a constant);
    the names of its columns, in the order the SQL selects them."""

    sql: str
    params: tuple[Any, ...]
    columns: tuple[str, ...]


@functools.cache
def _compiled(with_client_id: bool) -> _Compiled:
    """The ORM's SQL for `author_state`, compiled once per process.

    Building this query (two subqueries and an EXISTS) cost the ORM about half
    of all the work of storing a message; compiled once, it costs nothing.
    """
    room_id = _SENTINELS["room_id"]
    annotations: dict[str, Any] = {
        "muted_until": Subquery(mute_end_query(room_id=room_id)),
        "muted": Exists(mutes_query(room_id)),
    }
    if with_client_id:
        annotations["resent"] = Subquery(
            Message.objects.filter(
                room_id=room_id, author_id=OuterRef("pk"), client_id=_SENTINELS["client_id"]
            )
            .order_by()
            .values("pk")[:1]
        )
    query = (
        get_user_model()
        .objects.filter(pk=_SENTINELS["author_id"])
        .annotate(**annotations)
        .values("is_active", *annotations)
        .order_by()[:1]
        .query
    )
    sql, params = query.sql_with_params()
    by_value = {value: _Parameter(name) for name, value in _SENTINELS.items()}
    # A values() query's names, in the order its SQL selects them (Django 5.2's
    # Query.selected; tests/test_services_concurrent_writes.py checks them against
    # the cursor's).
    columns = tuple(query.selected)
    return _Compiled(sql, tuple(by_value.get(param, param) for param in params), columns)
