"""The search index of messages, per database: what it is, made, checked and rebuilt.

PostgreSQL: a stored generated column `chat_message.search_vector`
(`to_tsvector(<language>, body)`, vector_expression) with a GIN index. Stored rather than an
index on the expression: searches filter and rank the vectors of many rows,
and recomputing `to_tsvector` for each costs more than the whole query may
(bench/results/2026-12-01-search/README.md). The language is part of the
column's definition: a new CHAT_SEARCH_LANGUAGE takes effect when the column
is rebuilt (`manage.py chat_search_rebuild`).

SQLite: an FTS5 table over `chat_message.body` (external content: it keeps
only the index, and reads bodies from chat_message), kept in step by
triggers on insert, edit of the body, and delete. English is stemmed with
FTS5's porter tokenizer; any other language is matched word for word.

Migration 0006 makes it; `chat_search_rebuild` makes it again for the
language set now; `triggers_ensure` puts back triggers that a later
migration dropped (Django remakes a table on SQLite to alter it, and
dropping the old table drops its triggers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage
from django.db.backends.base.base import BaseDatabaseWrapper

COLUMN = "search_vector"
INDEX = "chat_message_search"  # PostgreSQL's GIN index; SQLite's FTS5 table
TRIGGERS = ("insert", "update", "delete")
# PostgreSQL text search configurations are plain names (`\dF` lists them).
LANGUAGE_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")


class SearchSchemaError(Exception):
    """The index cannot be made as asked (an unknown language, a database without search)."""


def tokenizer(language: str) -> str:
    """SQLite's FTS5 tokenizer for `language`: English stemmed, anything else word for word."""
    stemmer = "porter " if language == "english" else ""
    return f"{stemmer}unicode61 remove_diacritics 2"


def vector_expression(language: str) -> str:
    """PostgreSQL: the words of a body, as the column stores them.

    Bodies are plain text, but PostgreSQL's parser reads "<...>" as HTML: it
    drops tags, and everything between <script> and </script>. With "<" read
    as a space, every word of a body is indexed. (The language's name was
    checked against LANGUAGE_PATTERN: it cannot close the literal.)
    """
    return f"to_tsvector('{language}'::regconfig, replace(body, '<'::text, ' '::text))"


def language_check(connection: BaseDatabaseWrapper, language: str) -> None:
    """Refuse a language the database cannot index in."""
    if not LANGUAGE_PATTERN.fullmatch(language):
        raise SearchSchemaError(f"{language!r} is not a text search configuration name")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_ts_config WHERE cfgname = %s", [language])
            if cursor.fetchone() is None:
                raise SearchSchemaError(
                    f"PostgreSQL has no text search configuration {language!r}"
                    " (`\\dF` in psql lists them)"
                )


def index_create(connection: BaseDatabaseWrapper, *, language: str) -> None:
    """Make the index for `language`, and fill it from the messages stored."""
    language_check(connection, language)
    if connection.vendor == "postgresql":
        _execute(
            connection,
            f"ALTER TABLE chat_message ADD COLUMN {COLUMN} tsvector GENERATED ALWAYS AS"
            f" ({vector_expression(language)}) STORED",
            f"CREATE INDEX {INDEX} ON chat_message USING gin ({COLUMN})",
        )
    elif connection.vendor == "sqlite":
        _execute(
            connection,
            f"CREATE VIRTUAL TABLE {INDEX} USING fts5(body, content='chat_message',"
            f" content_rowid='id', tokenize='{tokenizer(language)}')",
            *_sqlite_triggers(),
            REFILL,
        )
    else:
        raise SearchSchemaError(f"search needs PostgreSQL or SQLite, not {connection.vendor}")


def index_drop(connection: BaseDatabaseWrapper) -> None:
    """Remove the index, if there is one."""
    if connection.vendor == "postgresql":
        # The column's index goes with it.
        _execute(connection, f"ALTER TABLE chat_message DROP COLUMN IF EXISTS {COLUMN}")
    elif connection.vendor == "sqlite":
        _execute(
            connection,
            *(f"DROP TRIGGER IF EXISTS {INDEX}_{event}" for event in TRIGGERS),
            f"DROP TABLE IF EXISTS {INDEX}",
        )


def index_rebuild(connection: BaseDatabaseWrapper, *, language: str) -> None:
    """Make the index again for `language`, in one transaction.

    On PostgreSQL the column is dropped and added again, which rewrites the
    messages table under a lock that holds writes to it until the end.
    """
    from django.db import transaction

    language_check(connection, language)
    with transaction.atomic(using=connection.alias):
        index_drop(connection)
        index_create(connection, language=language)


def index_definition(connection: BaseDatabaseWrapper) -> str | None:
    """How the index is built now: PostgreSQL's column expression, SQLite's
    tokenizer; None when there is no index."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
                " JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
                " WHERE d.adrelid = to_regclass('chat_message') AND a.attname = %s",
                [COLUMN],
            )
            row = cursor.fetchone()
            return None if row is None else str(row[0])
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [INDEX]
            )
            row = cursor.fetchone()
            if row is None:
                return None
            found = re.search(r"tokenize='([^']*)'", row[0])
            return found[1] if found else ""
    return None


def index_matches(connection: BaseDatabaseWrapper, *, language: str) -> bool:
    """Whether the index exists and was built for `language`."""
    definition = index_definition(connection)
    if definition is None:
        return False
    if connection.vendor == "postgresql":
        return definition == vector_expression(language)
    return definition == tokenizer(language)


def triggers_ensure(connection: BaseDatabaseWrapper) -> bool:
    """SQLite: put back any of the index's triggers that is missing, and then refill
    the index (messages written meanwhile were not indexed); whether it had to.

    Nothing to do on PostgreSQL, or when there is no index (before migration 0006).
    """
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE (type = 'table' AND name = %s)"
            " OR (type = 'trigger' AND tbl_name = 'chat_message')",
            [INDEX],
        )
        names = {name for (name,) in cursor.fetchall()}
    if INDEX not in names or all(f"{INDEX}_{event}" in names for event in TRIGGERS):
        return False
    from django.db import transaction

    with transaction.atomic(using=connection.alias):
        _execute(
            connection,
            *(f"DROP TRIGGER IF EXISTS {INDEX}_{event}" for event in TRIGGERS),
            *_sqlite_triggers(),
            REFILL,
        )
    return True


# SQLite: the FTS5 table reads every message again.
REFILL = "INSERT INTO chat_message_search(chat_message_search) VALUES ('rebuild')"


def _sqlite_triggers() -> list[str]:
    """The triggers that keep the FTS5 table in step with chat_message.

    An external-content table is told what to forget with the old values
    themselves ('delete'), before it learns the new ones.
    """
    forget = (
        "INSERT INTO chat_message_search(chat_message_search, rowid, body)"
        " VALUES ('delete', old.id, old.body);"
    )
    learn = "INSERT INTO chat_message_search(rowid, body) VALUES (new.id, new.body);"
    return [
        f"CREATE TRIGGER {INDEX}_insert AFTER INSERT ON chat_message BEGIN {learn} END",
        f"CREATE TRIGGER {INDEX}_update AFTER UPDATE OF body ON chat_message"
        f" BEGIN {forget} {learn} END",
        f"CREATE TRIGGER {INDEX}_delete AFTER DELETE ON chat_message BEGIN {forget} END",
    ]


def _execute(connection: BaseDatabaseWrapper, *statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: the SQLite index's triggers survive any later migration."""
    from django.db import connections

    triggers_ensure(connections[using])


def index_check(
    *, app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None, **kwargs: Any
) -> list[CheckMessage]:
    """System check (`manage.py check --database default`, and every `migrate`): the
    index was built in CHAT_SEARCH_LANGUAGE."""
    from django.conf import settings
    from django.core.checks import Warning as CheckWarning
    from django.db import DatabaseError, connections

    problems: list[CheckMessage] = []
    for alias in databases or []:
        connection = connections[alias]
        if connection.vendor not in ("postgresql", "sqlite"):
            continue
        try:
            definition = index_definition(connection)
            matches = index_matches(connection, language=settings.CHAT_SEARCH_LANGUAGE)
        except DatabaseError:
            continue  # no chat tables yet: migrate makes the index
        if definition is not None and not matches:
            problems.append(
                CheckWarning(
                    f"The search index of database {alias!r} was not built in"
                    f" CHAT_SEARCH_LANGUAGE={settings.CHAT_SEARCH_LANGUAGE!r} ({definition}).",
                    hint="Run `python manage.py chat_search_rebuild`.",
                    id="chat.W001",
                )
            )
    return problems
