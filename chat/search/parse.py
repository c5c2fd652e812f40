"""A search as typed: the query's syntax, its filters and their checks.

    search = search_parse(request.GET)             # or ChatError(bad_request)
    page = messages_search(user=user, search=search)   # chat/search/ranking.py

The syntax is PostgreSQL's `websearch_to_tsquery`: words (all of them must
match), "a phrase" (its words in a row), `or` between two terms (either),
and `-word` or `-"a phrase"` (must not match). Matching is by word, stemmed
in CHAT_SEARCH_LANGUAGE (chat/search/schema.py says how on each database).
What is checked here is what each database is given (ranking.websearch_text,
ranking.fts5_text), so a query either passes here or is refused with words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chat.domain.inputs import WHITE_SPACE, text_check
from chat.errors import ChatError
from chat.search.ranking import SEARCH_PAGES

if TYPE_CHECKING:
    from chat.search.ranking import SearchPage

# Code points of `q`, and the terms (words and phrases) it may hold.
QUERY_MAX = 200

TERMS_MAX = 20

USERNAME_MAX = 150


@dataclass(frozen=True)
class Term:
    """A word, or a phrase (its words in a row), as typed."""

    text: str
    phrase: bool = False


@dataclass(frozen=True)
class Clause:
    """Terms joined by `or`: one of them must match; an excluded clause (one term),
    none may."""

    terms: tuple[Term, ...]
    excluded: bool = False


def _searchable(text: str) -> bool:
    """Whether `text` holds a letter or digit: all else is punctuation, ignored as
    PostgreSQL's parser and SQLite's tokenizer ignore it."""
    return any(character.isalnum() for character in text)


def _tokens(text: str) -> list[tuple[str, str]]:
    """The query's tokens: ("or", ""), ("term", word), ("phrase", words), each of the
    last two as ("-term", ...) / ("-phrase", ...) when excluded."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        character = text[position]
        if character in WHITE_SPACE:
            position += 1
            continue
        excluded = character == "-"
        start = position
        while start < len(text) and text[start] == "-":
            # "--word" excludes it too (PostgreSQL would read a double negation).
            start += 1
        if start < len(text) and text[start] == '"':
            # A phrase runs to the next quote, or to the end when it is not closed.
            end = text.find('"', start + 1)
            end = len(text) if end == -1 else end
            tokens.append(("-phrase" if excluded else "phrase", text[start + 1 : end]))
            position = end + 1
            continue
        end = start
        while end < len(text) and text[end] not in WHITE_SPACE and text[end] != '"':
            end += 1
        word = text[start:end]
        if not excluded and word.lower() == "or":
            tokens.append(("or", ""))
        elif word:
            tokens.append(("-term" if excluded else "term", word))
        position = end
    return tokens


def query_parse(text: str) -> tuple[Clause, ...]:
    """The clauses of a query in websearch syntax, all of which must hold; or
    ChatError(bad_request) saying what is wrong with it."""
    clauses: list[Clause] = []
    joining = False
    for kind, value in _tokens(text):
        if kind == "or":
            # `or` joins the terms on either side; one with nothing before it is a word
            # PostgreSQL ignores too.
            joining = bool(clauses)
            continue
        if not _searchable(value):
            continue
        excluded = kind.startswith("-")
        term = Term(value.strip(WHITE_SPACE), phrase=kind.endswith("phrase"))
        if joining and clauses:
            previous = clauses[-1]
            if excluded or previous.excluded:
                raise ChatError(
                    "bad_request", "a term excluded with - cannot be an alternative of or"
                )
            clauses[-1] = Clause((*previous.terms, term))
        else:
            clauses.append(Clause((term,), excluded=excluded))
        joining = False
    if not clauses:
        raise ChatError("bad_request", "q has no words to search for")
    if all(clause.excluded for clause in clauses):
        raise ChatError("bad_request", "q only excludes words: give one to find")
    if sum(len(clause.terms) for clause in clauses) > TERMS_MAX:
        raise ChatError("bad_request", f"q has more than {TERMS_MAX} words and phrases")
    return tuple(clauses)


@dataclass(frozen=True)
class SearchRequest:
    """A checked search: the query, its filters and the page asked for."""

    text: str
    clauses: tuple[Clause, ...]
    room: str | None = None
    user: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    page: int = 1


def _text(params: Mapping[str, str], name: str, limit: int) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    text_check(raw, field=name)
    raw = raw.strip(WHITE_SPACE)
    if len(raw) > limit:
        raise ChatError("bad_request", f"{name} has at most {limit} characters")
    return raw or None


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date or time; one without an offset is in UTC, a date is its midnight."""
    raw = _text(params, name, 64)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ChatError(
            "bad_request",
            f"{name} must be an ISO 8601 date or time, such as 2026-12-01 or 2026-12-01T09:30Z",
        ) from None


def _page(params: Mapping[str, str]) -> int:
    raw = params.get("page")
    if raw is None:
        return 1
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= SEARCH_PAGES:
        raise ChatError("bad_request", f"page must be a whole number from 1 to {SEARCH_PAGES}")
    return int(raw)


def search_parse(params: Mapping[str, str]) -> SearchRequest:
    """A search from its query parameters: q, room, user, before, after, page.

    ChatError(bad_request) says what is wrong: an empty or malformed q, a
    date that is not ISO 8601, `after` not before `before`, a page out of range.
    """
    text = _text(params, "q", QUERY_MAX)
    if text is None:
        raise ChatError("bad_request", "q is empty: give words to search for")
    before, after = _time(params, "before"), _time(params, "after")
    if before is not None and after is not None and after >= before:
        raise ChatError("bad_request", "after must be earlier than before")
    return SearchRequest(
        text=text,
        clauses=query_parse(text),
        room=_text(params, "room", 100),
        user=_text(params, "user", USERNAME_MAX),
        before=before,
        after=after,
        page=_page(params),
    )


def next_page_query(params: Mapping[str, str], page: SearchPage) -> str | None:
    """The query string of the next page (the same search, `page` one more), or None."""
    if not page.has_next:
        return None
    from django.http import QueryDict

    following = QueryDict(mutable=True)
    for name in ("q", "room", "user", "before", "after"):
        value = params.get(name)
        if value is not None and value != "":
            following[name] = value
    following["page"] = str(page.page + 1)
    return following.urlencode()
