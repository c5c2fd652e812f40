"""Finding people by name: the people page, the picker and GET /api/users/.

    query, limit = people_query(request.GET)          # or ChatError(bad_request)
    found = people_find(user=user, query=query, limit=limit)

Who is found: active people, never a bot account (bots, the publisher among
them, publish with keys and are no one to talk to), and never the one who
asks (a conversation with oneself does not exist). Every word of the query
must be in the username, the first name or the last name (an admin may set
those), without case; no query lists everyone. Exact usernames come first,
then usernames that start with the query, then the rest, each by name; at
most PEOPLE_LIMIT_MAX at a time, with `more` saying others match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.urls import reverse

from chat.domain.inputs import WHITE_SPACE, text_check
from chat.errors import ChatError

# Code points of `q` once stripped (a username has at most 150), and its words.
QUERY_MAX = 150
WORDS_MAX = 5
PEOPLE_LIMIT = 20
PEOPLE_LIMIT_MAX = 50


@dataclass(frozen=True)
class PeopleFound:
    """A page of people found: at most the limit asked, and whether more match."""

    query: str
    people: list[User]
    more: bool


def people_query(params: Mapping[str, str]) -> tuple[str, int]:
    """(q stripped, limit) from query parameters, or ChatError(bad_request) saying why."""
    raw = params.get("q", "")
    text_check(raw, field="q")
    query = raw.strip(WHITE_SPACE)
    if len(query) > QUERY_MAX:
        raise ChatError("bad_request", f"q has at most {QUERY_MAX} characters")
    if len(query.split()) > WORDS_MAX:
        raise ChatError("bad_request", f"q has at most {WORDS_MAX} words")
    limit_raw = params.get("limit")
    limit = PEOPLE_LIMIT
    if limit_raw is not None:
        if (
            not limit_raw.isascii()
            or not limit_raw.isdigit()
            or len(limit_raw) > 3
            or not 1 <= int(limit_raw) <= PEOPLE_LIMIT_MAX
        ):
            raise ChatError(
                "bad_request", f"limit must be a whole number from 1 to {PEOPLE_LIMIT_MAX}"
            )
        limit = int(limit_raw)
    return query, limit


def people_matching(*, user: User, query: str) -> QuerySet[User]:
    """The people `user` may find by `query` (see the module), best first."""
    people = get_user_model().objects.filter(is_active=True, chat_bot__isnull=True)
    people = people.exclude(pk=user.pk)
    for word in query.split():
        named = Q(username__icontains=word)
        named |= Q(first_name__icontains=word) | Q(last_name__icontains=word)
        people = people.filter(named)
    if query:
        rank = Case(
            When(username__iexact=query, then=Value(0)),
            When(username__istartswith=query, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        return people.annotate(rank=rank).order_by("rank", Lower("username"), "pk")
    return people.order_by(Lower("username"), "pk")


def people_find(*, user: User, query: str, limit: int) -> PeopleFound:
    """At most `limit` of the people `query` finds for `user` (people_query), in one query."""
    found = list(people_matching(user=user, query=query)[: limit + 1])
    return PeopleFound(query=query, people=found[:limit], more=len(found) > limit)


def person_payload(person: User) -> dict[str, Any]:
    """A person as GET /api/users/ answers: their username, their name (or ""), and the
    address of the conversation with them."""
    return {
        "username": person.get_username(),
        "name": person.get_full_name(),
        "url": reverse("chat:direct", kwargs={"username": person.get_username()}),
    }
