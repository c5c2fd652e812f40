"""What the search tests (tests/test_search_*.py) share: rooms to search and what a reader finds."""

from __future__ import annotations

import pytest

from chat.domain.direct import direct_room_open
from chat.models import Room
from chat.search.parse import search_parse
from chat.search.ranking import messages_search

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
