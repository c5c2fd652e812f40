"""Message search (chat/search/), with no database: the query's syntax, the checks of a
request, and snippets.

Every test here runs on SQLite and on PostgreSQL alike (`make test` runs both):
the same behaviour from FTS5 and from a GIN index, except where a test says
how the two differ.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime

import pytest

from chat.errors import ChatError
from chat.search.parse import Clause, Term, query_parse, search_parse
from chat.search.ranking import fts5_text, websearch_text
from chat.search.snippets import LESS_THAN, MARK_END, MARK_START, Segment, snippet_segments

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
