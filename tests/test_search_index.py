"""Message search (chat/search/): each database's index, its language, the words too
common to index, and the migrations that build it.

Every test here runs on SQLite and on PostgreSQL alike (`make test` runs both):
the same behaviour from FTS5 and from a GIN index, except where a test says
how the two differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from chat.domain.writes import message_edit
from chat.errors import ChatError
from chat.search import ranking as search_ranking
from chat.search import schema as search_schema
from chat.search.parse import SearchRequest, query_parse
from chat.search.ranking import messages_search
from tests.helpers import send
from tests.search_helpers import found
from tests.search_helpers import rooms as rooms  # a fixture

# --- the databases' differences ---------------------------------------------------------------


def test_words_too_common_to_index(rooms, alice):
    """PostgreSQL drops the language's stop words from the index: a query of only those
    is refused as having nothing to look up. FTS5 keeps every word: it finds them."""
    send(rooms["general"], alice, "the end")
    if connection.vendor == "postgresql":
        with pytest.raises(ChatError) as refused:
            found(alice, "the")
        assert refused.value.code == "bad_request"
        assert "not indexed" in refused.value.detail
        with pytest.raises(ChatError):
            found(alice, "the -end")
    else:
        assert found(alice, "the") == ["the end"]
    assert found(alice, "the end") == ["the end"]


# --- the index itself ---------------------------------------------------------------------


def test_the_index_is_built_in_the_language_set(db, settings):
    assert search_schema.index_matches(connection, language="english")
    assert not search_schema.index_matches(connection, language="simple")
    call_command("chat_search_rebuild", "--check")
    settings.CHAT_SEARCH_LANGUAGE = "simple"
    warnings = search_schema.index_check(app_configs=None, databases=["default"])
    assert [warning.id for warning in warnings] == ["chat.W001"]
    with pytest.raises(CommandError, match="needs a rebuild"):
        call_command("chat_search_rebuild", "--check")


def test_a_rebuild_in_another_language_changes_what_matches(rooms, alice, settings):
    send(rooms["general"], alice, "deploying today")
    assert found(alice, "deploy") == ["deploying today"]
    settings.CHAT_SEARCH_LANGUAGE = "simple"
    if connection.vendor == "postgresql":
        # The test's own inserts left their (deferred) foreign key checks pending, and
        # PostgreSQL alters no table with checks pending; a real rebuild has none.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    try:
        call_command("chat_search_rebuild")
        assert search_schema.index_matches(connection, language="simple")
        # Word for word now: no stemming.
        assert found(alice, "deploy") == []
        assert found(alice, "deploying") == ["deploying today"]
        send(rooms["general"], alice, "deploy again")
        assert found(alice, "deploy") == ["deploy again"]
    finally:
        settings.CHAT_SEARCH_LANGUAGE = "english"
        call_command("chat_search_rebuild")
    assert search_schema.index_matches(connection, language="english")
    assert set(found(alice, "deploy")) == {"deploying today", "deploy again"}


def test_a_language_the_database_does_not_have_is_refused(db, settings):
    with pytest.raises(search_schema.SearchSchemaError):
        search_schema.language_check(connection, "klingon; drop table")
    if connection.vendor == "postgresql":
        with pytest.raises(search_schema.SearchSchemaError, match="no text search configuration"):
            search_schema.language_check(connection, "klingon")
    settings.CHAT_SEARCH_LANGUAGE = "klingon" if connection.vendor == "postgresql" else "x y"
    with pytest.raises(CommandError):
        call_command("chat_search_rebuild")
    assert search_schema.index_matches(connection, language="english")


def test_triggers_a_later_migration_dropped_are_put_back(rooms, alice):
    """On SQLite, Django remakes a table to alter it, dropping its triggers."""
    message = send(rooms["general"], alice, "before the migration")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER chat_message_search_update")
            cursor.execute("DROP TRIGGER chat_message_search_insert")
        send(rooms["general"], alice, "written while the triggers were gone")
        assert search_schema.triggers_ensure(connection) is True
    assert search_schema.triggers_ensure(connection) is False
    message_edit(room_id=message.room_id, number=message.number, user=alice, body="edited version")
    assert found(alice, "migration") == []
    assert found(alice, "edited") == ["edited version"]
    assert found(alice, "gone") == (
        ["written while the triggers were gone"] if connection.vendor == "sqlite" else []
    )


@pytest.mark.django_db(transaction=True)
def test_the_migration_is_reversible(alice, general):
    send(general, alice, "kept through the round trip")
    call_command("migrate", "chat", "0005", verbosity=0)
    assert search_schema.index_definition(connection) is None
    call_command("migrate", "chat", verbosity=0)
    assert search_schema.index_matches(connection, language="english")
    assert found(alice, "round") == ["kept through the round trip"]


def test_requests_reach_the_database_as_checked(rooms, alice):
    """A SearchRequest built by hand (not parsed) is searched as given."""
    send(rooms["general"], alice, "alpha beta")
    request = SearchRequest(
        text="alpha", clauses=query_parse("alpha"), before=datetime.now(UTC) + timedelta(days=1)
    )
    assert [hit.message.body for hit in messages_search(user=alice, search=request).hits] == [
        "alpha beta"
    ]


def test_looking_among_the_newest_first_finds_the_same(rooms, alice, monkeypatch):
    """PostgreSQL looks for the candidates among the newest messages first; whether
    they are all there or not, the results are those of a search of everything."""
    general = rooms["general"]
    for n in range(6):
        send(general, alice, f"{'beacon ' * (n % 3 + 1)}old {n}")
    for n in range(6):
        send(general, alice, f"{'beacon ' * (n % 3 + 1)}new {n}")
    monkeypatch.setattr(search_ranking, "SEARCH_PAGE_SIZE", 3)
    pages = {}
    # No window; one holding every match; one holding none (an empty range of ids).
    for window_from, share in ((10**9, 4), (0, 2), (0, 10**12)):
        monkeypatch.setattr(search_ranking, "WINDOW_FROM", window_from)
        monkeypatch.setattr(search_ranking, "WINDOW_SHARE", share)
        for candidates in (4, 12):
            monkeypatch.setattr(search_ranking, "SEARCH_CANDIDATES", candidates)
            pages[(window_from, share, candidates)] = [
                found(alice, "beacon", page=f"{page}") for page in (1, 2, 3, 4, 5)
            ]
    for (window_from, share, candidates), result in pages.items():
        assert result == pages[(10**9, 4, candidates)], (window_from, share, candidates)
    # The newest four only, best first (the newer first among equals).
    assert [body for page in pages[(10**9, 4, 4)] for body in page] == [
        "beacon beacon beacon new 5",
        "beacon beacon beacon new 2",
        "beacon beacon new 4",
        "beacon new 3",
    ]
    assert len([body for page in pages[(10**9, 4, 12)] for body in page]) == 12
