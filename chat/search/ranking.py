"""Ranked pages of the messages that match a search, on PostgreSQL or SQLite.

Only the rooms the user may read are searched: Room.objects.visible_to(user),
or room_for_user(...) for a `room` filter, which answers a room the user
may not read as one that does not exist. Deleted messages never match.

Ranking: of the SEARCH_CANDIDATES newest matches, the most relevant come
first (PostgreSQL's ts_rank_cd, SQLite's bm25), newer first among equals; so
at most SEARCH_PAGES pages. Ranking every match of a common word would read
every one of them, tens of thousands of rows; the newest few hundred are
found among the newest messages (bench/results/2026-12-01-search/README.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.urls import reverse

from chat.domain.access import room_for_user
from chat.errors import ChatError
from chat.models import Message, Room
from chat.search.snippets import (
    ELLIPSIS,
    LESS_THAN,
    MARK_END,
    MARK_START,
    SNIPPET_WORDS,
    Segment,
    snippet_segments,
)

if TYPE_CHECKING:
    from chat.search.parse import Clause, SearchRequest, Term

SEARCH_PAGE_SIZE = 20

SEARCH_CANDIDATES = 500

SEARCH_PAGES = SEARCH_CANDIDATES // SEARCH_PAGE_SIZE

# PostgreSQL looks in the newest 1/WINDOW_SHARE of the messages first, once there
# are WINDOW_FROM of them (_PostgreSQL.page_ids).
WINDOW_SHARE = 4

WINDOW_FROM = 100_000


def websearch_text(clauses: tuple[Clause, ...]) -> str:
    """The clauses in websearch syntax again: what PostgreSQL is given, so that it
    searches exactly what was checked here."""

    def term(item: Term) -> str:
        return f'"{item.text}"' if item.phrase else item.text

    return " ".join(
        ("-" if clause.excluded else "") + " or ".join(term(item) for item in clause.terms)
        for clause in clauses
    )


def fts5_text(clauses: tuple[Clause, ...]) -> str:
    """The clauses as an FTS5 query, every term a quoted string: whatever was typed,
    it is never an FTS5 syntax error (FTS5 reads nothing inside quotes but quotes,
    which are doubled)."""

    def term(item: Term) -> str:
        return '"' + item.text.replace('"', '""') + '"'

    def alternatives(clause: Clause) -> str:
        return "(" + " OR ".join(term(item) for item in clause.terms) + ")"

    found = " AND ".join(alternatives(clause) for clause in clauses if not clause.excluded)
    excluded = "".join(f" NOT {alternatives(clause)}" for clause in clauses if clause.excluded)
    return f"({found}){excluded}"


@dataclass(frozen=True)
class Hit:
    """A message found, and the part of it that matched."""

    message: Message
    snippet: list[Segment]


@dataclass(frozen=True)
class SearchPage:
    """One page of results, best first, and whether another page follows."""

    hits: list[Hit]
    page: int
    has_next: bool


def permalink(message: Message) -> str:
    """Where a message is shown in its room: the room page, around its id."""
    return f"{reverse('chat:room', args=[message.room.slug])}?around={message.number}"


def messages_search(*, user: User | AnonymousUser, search: SearchRequest) -> SearchPage:
    """One page of the messages `user` may read that match, best first.

    ChatError(not_found) for a room filter naming a room the user may not
    read, as for one that does not exist; a `user` filter naming nobody finds
    nothing. On PostgreSQL, ChatError(bad_request) for a query whose words
    are all too common to be indexed ("the", "and": the language's stop words).
    """
    if search.room is not None:
        room_ids = [room_for_user(user=user, slug=search.room).pk]
    else:
        room_ids = list(Room.objects.visible_to(user).order_by().values_list("pk", flat=True))
    if not room_ids:
        return SearchPage(hits=[], page=search.page, has_next=False)
    if connection.vendor == "postgresql":
        backend: _Backend = _PostgreSQL(search)
    elif connection.vendor == "sqlite":
        backend = _SQLite(search)
    else:
        raise ChatError("unavailable", "search needs PostgreSQL or SQLite")
    ids = backend.page_ids(room_ids=room_ids)
    if not ids and search.page == 1:
        # Nothing found: because there was nothing to look up?
        backend.check()
    has_next = len(ids) > SEARCH_PAGE_SIZE
    ids = ids[:SEARCH_PAGE_SIZE]
    found = Message.objects.filter(pk__in=ids).for_wire().order_by().in_bulk()
    snippets = backend.snippets(ids) if ids else {}
    hits = [
        Hit(message=found[pk], snippet=snippet_segments(snippets.get(pk, ""), found[pk].body))
        for pk in ids
        if pk in found
    ]
    return SearchPage(hits=hits, page=search.page, has_next=has_next)


class _Backend:
    """One database's way to find, rank and mark the matches of a search."""

    def __init__(self, search: SearchRequest) -> None:
        self.search = search

    def check(self) -> None:
        """Refuse what this database cannot search for (when match() found nothing)."""

    def match(self) -> tuple[str, str, list[Any]]:
        """(FROM clause, match condition, its parameters), the message being `m`.

        A query check() would refuse matches nothing, and reads no row.
        """
        raise NotImplementedError

    def execute(self, sql: str, params: list[Any]) -> list[Any]:
        """The page query's rows."""
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def candidate_columns(self) -> str:
        """What a candidate carries besides its id, for score()."""
        raise NotImplementedError

    def score(self) -> tuple[str, list[Any]]:
        """A candidate's relevance, higher for better matches, from candidate_columns()."""
        raise NotImplementedError

    def rooms_condition(self, room_ids: list[int]) -> tuple[str, list[Any]]:
        """`m` is in one of these rooms."""
        raise NotImplementedError

    def snippets(self, ids: list[int]) -> dict[int, str]:
        """Each message's snippet, its matches between MARK_START and MARK_END."""
        raise NotImplementedError

    def page_ids(self, *, room_ids: list[int]) -> list[int]:
        """The ids of the page asked for, and one more if another page follows."""
        return [row[0] for row in self.page_rows(room_ids=room_ids)]

    def page_rows(self, *, room_ids: list[int], newer_than: int | None = None) -> list[Any]:
        """The page asked for, and one more row if another page follows: (id, the
        number of candidates) each.

        The candidates are the SEARCH_CANDIDATES newest matches (with ids above
        `newer_than`, if given); only they are scored, outside the query that
        finds them (which may then stop early).
        """
        search = self.search
        source, condition, params = self.match()
        conditions = [condition, "m.deleted_at IS NULL"]
        if newer_than is not None:
            conditions.append("m.id > %s")
            params.append(newer_than)
        if len(room_ids) == 1:
            conditions.append("m.room_id = %s")
            params.append(room_ids[0])
        else:
            rooms_sql, rooms_params = self.rooms_condition(room_ids)
            conditions.append(rooms_sql)
            params += rooms_params
        if search.user is not None:
            users = get_user_model()._meta.db_table
            conditions.append(f"m.author_id IN (SELECT id FROM {users} WHERE username = %s)")  # noqa: S608  (a model table name)
            params.append(search.user)
        if search.before is not None:
            conditions.append("m.created < %s")
            params.append(connection.ops.adapt_datetimefield_value(search.before))
        if search.after is not None:
            conditions.append("m.created >= %s")
            params.append(connection.ops.adapt_datetimefield_value(search.after))
        score_sql, score_params = self.score()
        sql = (
            "SELECT id, count(*) OVER () FROM"  # noqa: S608  (no user text: parameters)
            f" (SELECT m.id AS id, {self.candidate_columns()}"
            f" FROM {source} WHERE {' AND '.join(conditions)}"
            " ORDER BY m.id DESC LIMIT %s) AS candidates"
            f" ORDER BY {score_sql} DESC, id DESC LIMIT %s OFFSET %s"
        )
        params = [
            *params,
            SEARCH_CANDIDATES,
            *score_params,
            SEARCH_PAGE_SIZE + 1,
            (search.page - 1) * SEARCH_PAGE_SIZE,
        ]
        return self.execute(sql, params)


class _PostgreSQL(_Backend):
    """The stored tsvector column and its GIN index; websearch_to_tsquery, ts_rank_cd."""

    def __init__(self, search: SearchRequest) -> None:
        super().__init__(search)
        self.language = settings.CHAT_SEARCH_LANGUAGE
        self.query = websearch_text(search.clauses)

    def tsquery(self) -> tuple[str, list[Any]]:
        # Constants, not a subquery: the planner reads the query's words and
        # weighs the index against walking the newest messages back.
        return "websearch_to_tsquery(%s::regconfig, %s)", [self.language, self.query]

    def check(self) -> None:
        sql, params = self.tsquery()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT querytree({sql}) IN ('', 'T')", params)
            if cursor.fetchone()[0]:
                raise ChatError(
                    "bad_request",
                    "q has no words to look up: words as common as “the” are not indexed",
                )

    def match(self) -> tuple[str, str, list[Any]]:
        sql, params = self.tsquery()
        # querytree() is what the GIN index can look up: '' or 'T' when nothing (only
        # stop words, or only words that must not match), which would read every
        # row. On constants, the planner folds the test, and then reads nothing.
        return (
            "chat_message m",
            f"querytree({sql}) NOT IN ('', 'T') AND m.search_vector @@ {sql}",
            [*params, *params],
        )

    def page_ids(self, *, room_ids: list[int]) -> list[int]:
        """The newest matches are looked for among the newest quarter of the messages
        first: only when fewer than SEARCH_CANDIDATES match there, in all of them.

        Either way the candidates are the same. But a word of a few thousand
        matches costs a read of each one's page from the GIN index (or a walk
        back through hundreds of thousands of messages); in the newest quarter,
        PostgreSQL intersects the index's matches with the primary key's range
        and reads only those (bench/results/2026-12-01-search/README.md).
        """
        newest = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        if newest >= WINDOW_FROM:
            rows = self.page_rows(room_ids=room_ids, newer_than=newest - newest // WINDOW_SHARE)
            if rows and rows[0][1] >= SEARCH_CANDIDATES:
                return [row[0] for row in rows]
        return super().page_ids(room_ids=room_ids)

    def execute(self, sql: str, params: list[Any]) -> list[Any]:
        with transaction.atomic(), connection.cursor() as cursor:
            # For this query only (bench/results/2026-12-01-search/README.md):
            # - parallel workers cost more to start than the query takes, and on a
            #   busy server they made the slowest searches slower;
            # - the messages' pages are in memory (shared buffers, or the system's
            #   cache): a page read at random costs about one read in sequence
            #   (1.1, the value usually given for SSDs and memory; the default 4 is
            #   for spinning disks). With 4, PostgreSQL walked 170,000 messages back
            #   rather than read the 1,200 pages the index pointed to: 95 ms, not 30.
            cursor.execute(
                "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
                " set_config('random_page_cost', '1.1', true)"
            )
            cursor.execute(sql, params)
            return cursor.fetchall()

    def candidate_columns(self) -> str:
        return "m.search_vector AS vector"

    def score(self) -> tuple[str, list[Any]]:
        sql, params = self.tsquery()
        # Normalization 1: divided by 1 + the log of the message's length, so that a
        # short message about the words outranks a long one that mentions them once
        # (as bm25 does on SQLite).
        return f"ts_rank_cd(vector, {sql}, 1)", params

    def rooms_condition(self, room_ids: list[int]) -> tuple[str, list[Any]]:
        # A test of each row found, against the list hashed. "+ 0" keeps the
        # planner from ANDing the room index's bitmap (every message of the
        # rooms: most of the table) into the GIN index's; as a semi-join with
        # the list, it sometimes compared each row with every room in turn.
        return "(m.room_id + 0) = ANY(%s::bigint[])", [room_ids]

    def snippets(self, ids: list[int]) -> dict[int, str]:
        sql, params = self.tsquery()
        options = (
            f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords={SNIPPET_WORDS},"
            f" MinWords={SNIPPET_WORDS // 2}, ShortWord=2"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, ts_headline(%s::regconfig, replace(body, '<', %s), {sql}, %s)"  # noqa: S608  (no user text)
                " FROM chat_message WHERE id = ANY(%s)",
                [self.language, LESS_THAN, *params, options, ids],
            )
            return dict(cursor.fetchall())


class _SQLite(_Backend):
    """The FTS5 table; bm25, snippet()."""

    def __init__(self, search: SearchRequest) -> None:
        super().__init__(search)
        self.query = fts5_text(search.clauses)

    def match(self) -> tuple[str, str, list[Any]]:
        return (
            "chat_message_search JOIN chat_message m ON m.id = chat_message_search.rowid",
            "chat_message_search MATCH %s",
            [self.query],
        )

    def candidate_columns(self) -> str:
        # bm25() only answers in the query that matches; lower is better.
        return "-bm25(chat_message_search) AS relevance"

    def score(self) -> tuple[str, list[Any]]:
        return "relevance", []

    def rooms_condition(self, room_ids: list[int]) -> tuple[str, list[Any]]:
        # One parameter, whatever the number of rooms (SQLite limits parameters).
        return "m.room_id IN (SELECT value FROM json_each(%s))", [json.dumps(room_ids)]

    def snippets(self, ids: list[int]) -> dict[int, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT rowid, snippet(chat_message_search, 0, %s, %s, %s, %s)"
                " FROM chat_message_search WHERE chat_message_search MATCH %s"
                " AND rowid IN (SELECT value FROM json_each(%s))",
                [MARK_START, MARK_END, ELLIPSIS, SNIPPET_WORDS, self.query, json.dumps(ids)],
            )
            return dict(cursor.fetchall())
