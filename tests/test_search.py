"""Message search (chat/search/): the query's syntax, its checks, each database's index,
ranking, filters, pages, snippets, and who may find what.

Every test here runs on SQLite and on PostgreSQL alike (`make test` runs both):
the same behaviour from FTS5 and from a GIN index, except where a test says
how the two differ.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete, message_edit
from chat.errors import ChatError
from chat.models import Message, Room
from chat.search import ranking as search_ranking
from chat.search import schema as search_schema
from chat.search.parse import Clause, SearchRequest, Term, query_parse, search_parse
from chat.search.ranking import fts5_text, messages_search, websearch_text
from chat.search.snippets import LESS_THAN, MARK_END, MARK_START, Segment, snippet_segments
from tests.helpers import send

# --- the query's syntax (no database) ------------------------------------------------


def test_words_are_all_required_and_phrases_keep_their_words_together():
    assert query_parse('deploy "staging server" friday') == (
        Clause((Term("deploy"),)),
        Clause((Term("staging server", phrase=True),)),
        Clause((Term("friday"),)),
    )


def test_or_joins_the_terms_on_either_side_in_any_case():
    assert query_parse("deploy or release OR ship fix") == (
        Clause((Term("deploy"), Term("release"), Term("ship"))),
        Clause((Term("fix"),)),
    )


def test_a_minus_in_front_excludes_a_word_or_a_phrase():
    assert query_parse('deploy -staging -"dry run" half-done') == (
        Clause((Term("deploy"),)),
        Clause((Term("staging"),), excluded=True),
        Clause((Term("dry run", phrase=True),), excluded=True),
        Clause((Term("half-done"),)),
    )


def test_what_postgresql_ignores_is_ignored():
    # `or` with nothing on one side, punctuation alone, a lone minus, an empty phrase.
    assert query_parse("or deploy or") == (Clause((Term("deploy"),)),)
    assert query_parse('deploy or !!! "" - ship') == (Clause((Term("deploy"), Term("ship"))),)
    assert query_parse('"" - "still open') == (Clause((Term("still open", phrase=True),)),)


def test_a_double_minus_excludes_as_one_does():
    assert query_parse("deploy --ship") == query_parse("deploy -ship")
    assert websearch_text(query_parse("deploy --ship")) == "deploy -ship"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no words"),
        ("   ", "no words"),
        ('!!! "" -- ** 👍', "no words"),
        ("or OR or", "no words"),
        ("-deploy", "only excludes"),
        ('-deploy -"dry run"', "only excludes"),
        ("deploy or -staging", "cannot be an alternative"),
        ("-staging or deploy", "cannot be an alternative"),
        (" ".join(f"w{n}" for n in range(21)), "more than 20"),
    ],
)
def test_a_query_with_nothing_to_find_is_refused_with_the_reason(text, reason):
    with pytest.raises(ChatError) as refused:
        query_parse(text)
    assert refused.value.code == "bad_request"
    assert reason in refused.value.detail


def test_postgresql_is_given_exactly_the_query_that_was_checked():
    clauses = query_parse('  deploy   or  ship  -"dry  run" "unclosed')
    assert websearch_text(clauses) == 'deploy or ship -"dry  run" "unclosed"'
    assert query_parse(websearch_text(clauses)) == clauses


def test_fts5_gets_every_term_quoted():
    clauses = query_parse('deploy or NEAR -"a b" c*:^')
    assert fts5_text(clauses) == '(("deploy" OR "NEAR") AND ("c*:^")) NOT ("a b")'
    assert fts5_text((Clause((Term('say "hi"'),)),)) == '(("say ""hi"""))'


FTS5_HOSTILE = [
    '"',
    "-",
    "*",
    "^",
    ":",
    "(",
    ")",
    "+",
    "NEAR",
    "AND",
    "OR",
    "NOT",
    "or",
    " ",
    " ",
    "a",
    "é",
    "1",
    "{",
    "}",
    ",",
    "'",
    "\\",
]


def test_no_typed_query_is_an_fts5_syntax_error():
    """Thousands of queries made of FTS5's own syntax run against a real FTS5 table."""
    database = sqlite3.connect(":memory:")
    database.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    database.execute("INSERT INTO t(body) VALUES ('a NEAR and or not é 1')")
    rng = random.Random(7)
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(FTS5_HOSTILE) for _ in range(rng.randint(1, 14)))
        try:
            clauses = query_parse(text)
        except ChatError:
            continue
        database.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts5_text(clauses),)).fetchall()
        checked += 1
    assert checked > 1000


# --- the request's checks (no database) ----------------------------------------------


def test_a_request_reads_every_parameter():
    request = search_parse(
        {
            "q": "  deploy  ",
            "room": "general",
            "user": "alice",
            "after": "2026-11-01",
            "before": "2026-12-01T09:30:00+02:00",
            "page": "3",
        }
    )
    assert request.text == "deploy"
    assert (request.room, request.user, request.page) == ("general", "alice", 3)
    assert request.after == datetime(2026, 11, 1, tzinfo=UTC)
    assert request.before == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


def test_empty_filters_are_no_filters():
    request = search_parse({"q": "deploy", "room": "", "user": " ", "after": "", "before": ""})
    assert (request.room, request.user, request.after, request.before) == (None,) * 4
    assert request.page == 1


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "q is empty"),
        ({"q": " \t "}, "q is empty"),
        ({"q": "x" * 201}, "at most 200"),
        ({"q": "deploy\x00"}, "NUL"),
        ({"q": "deploy", "user": "a\x00"}, "NUL"),
        ({"q": "deploy", "room": "\ud800"}, "surrogate"),
        ({"q": "deploy", "user": "u" * 151}, "at most 150"),
        ({"q": "deploy", "before": "yesterday"}, "ISO 8601"),
        ({"q": "deploy", "after": "2026-13-01"}, "ISO 8601"),
        ({"q": "deploy", "after": "0001-01-01T00:00+05:00"}, "ISO 8601"),
        ({"q": "deploy", "after": "2026-12-01", "before": "2026-12-01"}, "earlier than"),
        ({"q": "deploy", "after": "2026-12-02", "before": "2026-12-01"}, "earlier than"),
        ({"q": "deploy", "page": "0"}, "page must be"),
        ({"q": "deploy", "page": "26"}, "from 1 to 25"),
        ({"q": "deploy", "page": "-1"}, "page must be"),
        ({"q": "deploy", "page": "1.5"}, "page must be"),
        ({"q": "deploy", "page": "٣"}, "page must be"),
        ({"q": "deploy", "page": "9" * 40}, "page must be"),
        ({"q": "-deploy"}, "only excludes"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(params, reason):
    with pytest.raises(ChatError) as refused:
        search_parse(params)
    assert refused.value.code == "bad_request"
    assert reason in refused.value.detail


# --- snippets (no database) ------------------------------------------------------------

M, E = MARK_START, MARK_END
LT = LESS_THAN


def test_a_snippet_is_segments_of_text_and_matches():
    body = "we deploy at <b>noon</b> & deploy again"
    marked = f"we {M}deploy{E} at {LT}b>noon{LT}/b> & {M}deploy{E} again"
    assert snippet_segments(marked, body) == [
        Segment("we ", False),
        Segment("deploy", True),
        Segment(" at <b>noon</b> & ", False),
        Segment("deploy", True),
        Segment(" again", False),
    ]


def test_a_snippet_from_the_middle_of_a_body_says_so():
    body = "first words here, then the deploy happened, and then more words"
    segments = snippet_segments(f"then the {M}deploy{E} happened,", body)
    assert segments[0] == Segment("…", False)
    assert segments[-1] == Segment("…", False)
    assert "".join(segment.text for segment in segments) == "…then the deploy happened,…"


def test_a_body_holding_the_marks_itself_gets_no_false_matches():
    body = f"a {M}forged{E} match and a deploy"
    assert snippet_segments(f"a {M}{M}forged{E}{E}", body) == [Segment(body, False)]


# --- searching, on the test's database ---------------------------------------------------


@pytest.fixture
def rooms(db, alice, bob, make_user, general):
    carol = make_user("carol")
    private = Room.objects.create(slug="ops", name="Ops", kind=Room.Kind.PRIVATE)
    private.members.add(alice, bob)
    direct = direct_room_open(user=alice, username="bob")
    return {"general": general, "private": private, "direct": direct, "carol": carol}


def found(reader, text: str, **filters) -> list[str]:
    """The bodies `reader`'s search finds, in order (first page)."""
    page = messages_search(user=reader, search=search_parse({"q": text, **filters}))
    return [hit.message.body for hit in page.hits]


def test_a_word_finds_its_messages_in_every_form(rooms, alice):
    send(rooms["general"], alice, "We deploy on Fridays")
    send(rooms["general"], alice, "deploying now")
    send(rooms["general"], alice, "nothing to see")
    assert set(found(alice, "deploys")) == {"We deploy on Fridays", "deploying now"}
    assert found(alice, "FRIDAY") == ["We deploy on Fridays"]


def test_phrases_or_and_exclusions(rooms, alice):
    general = rooms["general"]
    send(general, alice, "the big dog barked")
    send(general, alice, "a dog, big and loud")
    send(general, alice, "a cat")
    assert found(alice, '"big dog"') == ["the big dog barked"]
    assert set(found(alice, "dog -barked")) == {"a dog, big and loud"}
    assert set(found(alice, "cat or barked")) == {"a cat", "the big dog barked"}
    assert found(alice, '-"big dog" dog') == ["a dog, big and loud"]


def test_better_matches_come_first_and_newer_first_among_equals(rooms, alice):
    general = rooms["general"]
    older = send(general, alice, "deploy")
    send(general, alice, "a long message that mentions deploy once among many other words")
    best = send(general, alice, "deploy deploy deploy")
    newer = send(general, alice, "deploy")
    order = found(alice, "deploy")
    assert order[0] == best.body
    assert order[-1] == "a long message that mentions deploy once among many other words"
    ids = [hit.message.pk for hit in search_hits(alice, "deploy")]
    assert ids.index(newer.pk) < ids.index(older.pk)


def search_hits(reader, text: str, **filters):
    return messages_search(user=reader, search=search_parse({"q": text, **filters})).hits


def test_deleted_messages_are_never_found(rooms, alice):
    kept = send(rooms["general"], alice, "release notes")
    gone = send(rooms["general"], alice, "release party")
    message_delete(room_id=gone.room_id, number=gone.number, user=alice)
    assert [hit.message.pk for hit in search_hits(alice, "release")] == [kept.pk]


def test_an_edit_is_found_by_its_new_words_only(rooms, alice):
    message = send(rooms["general"], alice, "meeting at noon")
    message_edit(room_id=message.room_id, number=message.number, user=alice, body="lunch at one")
    assert found(alice, "noon") == []
    assert found(alice, "lunch") == ["lunch at one"]


def test_messages_of_a_deleted_room_leave_the_index(rooms, alice):
    doomed = Room.objects.create(slug="doomed", name="Doomed")
    send(doomed, alice, "ephemeral words")
    send(rooms["general"], alice, "durable words")
    doomed.delete()
    assert found(alice, "words") == ["durable words"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # FTS5 compares its index with chat_message's rows: raises if they disagree.
            cursor.execute(
                "INSERT INTO chat_message_search(chat_message_search, rank)"
                " VALUES ('integrity-check', 1)"
            )


# --- who may find what -------------------------------------------------------------------


def test_private_room_messages_are_found_by_members_only(rooms, alice, bob):
    send(rooms["private"], alice, "the launch code is secret")
    carol = rooms["carol"]
    assert found(alice, "launch") == ["the launch code is secret"]
    assert found(bob, "launch") == ["the launch code is secret"]
    assert found(carol, "launch") == []
    rooms["private"].members.remove(bob)
    assert found(bob, "launch") == []


def test_direct_conversations_are_found_by_their_two_people_only(rooms, alice, bob):
    send(rooms["direct"], bob, "my secret salary")
    assert found(alice, "salary") == ["my secret salary"]
    assert found(bob, "salary") == ["my secret salary"]
    assert found(rooms["carol"], "salary") == []


@pytest.mark.parametrize("kind", ["private", "direct"])
def test_a_room_filter_on_a_room_the_user_may_not_read_is_a_room_that_does_not_exist(
    rooms, alice, kind
):
    send(rooms[kind], alice, "hidden words")
    carol = rooms["carol"]
    with pytest.raises(ChatError) as hidden:
        found(carol, "hidden", room=rooms[kind].slug)
    with pytest.raises(ChatError) as missing:
        found(carol, "hidden", room="no-such-room")
    assert (hidden.value.code, hidden.value.detail) == (missing.value.code, missing.value.detail)
    assert hidden.value.code == "not_found"


def test_broadcast_rooms_are_searched_by_everyone_signed_in(rooms, alice, make_user):
    stage = Room.objects.create(slug="stage", name="Stage", kind=Room.Kind.BROADCAST)
    publisher = make_user("host", is_staff=True)
    send(stage, publisher, "keynote starts soon")
    assert found(rooms["carol"], "keynote") == ["keynote starts soon"]


# --- filters ---------------------------------------------------------------------------------


def test_room_and_author_filters(rooms, alice, bob):
    send(rooms["general"], alice, "standup in general")
    send(rooms["private"], bob, "standup in ops")
    send(rooms["general"], bob, "standup by bob")
    assert set(found(alice, "standup", room="ops")) == {"standup in ops"}
    assert set(found(alice, "standup", user="bob")) == {"standup in ops", "standup by bob"}
    assert found(alice, "standup", room="general", user="bob") == ["standup by bob"]
    # Nobody of that name: nothing found, rather than an error.
    assert found(alice, "standup", user="nobody") == []


def test_date_filters(rooms, alice):
    general = rooms["general"]
    dates = {
        "report one": datetime(2026, 10, 31, 23, 59, tzinfo=UTC),
        "report two": datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
        "report three": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        "report four": datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
    }
    for body, created in dates.items():
        message = send(general, alice, body)
        Message.objects.filter(pk=message.pk).update(created=created)
    assert set(found(alice, "report", after="2026-11-01", before="2026-12-01")) == {
        "report two",
        "report three",
    }
    assert set(found(alice, "report", after="2026-11-30T13:00:00+01:00")) == {
        "report three",
        "report four",
    }
    assert set(found(alice, "report", before="2026-11-01T00:00:00.000001Z")) == {
        "report one",
        "report two",
    }


# --- pages and ranking's reach --------------------------------------------------------------


def test_results_come_a_page_at_a_time_without_repeats(rooms, alice, monkeypatch):
    monkeypatch.setattr(search_ranking, "SEARCH_PAGE_SIZE", 4)
    sent = {send(rooms["general"], alice, f"ticket {n}").pk for n in range(10)}
    seen = []
    for number, has_next in ((1, True), (2, True), (3, False)):
        page = messages_search(
            user=alice, search=search_parse({"q": "ticket", "page": f"{number}"})
        )
        assert page.has_next is has_next
        seen += [hit.message.pk for hit in page.hits]
    assert sorted(seen) == sorted(sent)
    page = messages_search(user=alice, search=search_parse({"q": "ticket", "page": "4"}))
    assert (page.hits, page.has_next) == ([], False)


def test_only_the_newest_matches_are_ranked(rooms, alice, monkeypatch):
    monkeypatch.setattr(search_ranking, "SEARCH_CANDIDATES", 3)
    best = send(rooms["general"], alice, "alert alert alert alert")
    for n in range(3):
        send(rooms["general"], alice, f"alert number {n}")
    assert best.body not in found(alice, "alert")
    assert len(found(alice, "alert")) == 3


def test_every_page_holds_the_best_of_what_is_left(rooms, alice, monkeypatch):
    monkeypatch.setattr(search_ranking, "SEARCH_PAGE_SIZE", 2)
    bodies = ["note", "note note note", "note and other words", "note note"]
    for body in bodies:
        send(rooms["general"], alice, body)
    first = found(alice, "note")
    second = found(alice, "note", page="2")
    assert first[0] == "note note note"
    assert sorted(first + second) == sorted(bodies)


# --- snippets, from each database -------------------------------------------------------------


def test_hits_carry_their_snippet_with_the_matches_marked(rooms, alice):
    send(rooms["general"], alice, "Deploying <script>alert(1)</script> & more")
    (hit,) = search_hits(alice, "deploy alert")
    assert [segment.text for segment in hit.snippet if segment.match] == ["Deploying", "alert"]
    assert "".join(segment.text for segment in hit.snippet) == hit.message.body


def test_the_snippet_of_a_long_message_is_the_part_around_its_match(rooms, alice):
    body = (
        " ".join(f"filler{n}" for n in range(60))
        + " needle "
        + " ".join(f"tail{n}" for n in range(60))
    )
    send(rooms["general"], alice, body)
    (hit,) = search_hits(alice, "needle")
    text = "".join(segment.text for segment in hit.snippet)
    assert [segment.text for segment in hit.snippet if segment.match] == ["needle"]
    assert text.startswith("…") and text.endswith("…")
    assert len(text.split()) < 40


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
