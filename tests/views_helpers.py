"""What the page tests (tests/test_views_*.py) share: rooms of every kind, seen from alice."""

from __future__ import annotations

import pytest

from chat.domain.direct import direct_room_open
from chat.models import Room

# --- the lobby ----------------------------------------------------------------------


@pytest.fixture
def world(alice, bob, make_user, general):
    """Rooms of every kind, seen from alice; carol and dave have rooms of their own."""
    carol = make_user("carol")
    make_user("dave")
    ours = Room.objects.create(name="Ours", slug="ours", kind=Room.Kind.PRIVATE)
    ours.members.add(alice, bob)
    theirs = Room.objects.create(
        name="Theirs", slug="theirs", kind=Room.Kind.PRIVATE, description="keep out"
    )
    theirs.members.add(bob, carol)
    mine_direct = direct_room_open(user=alice, username="bob")
    other_direct = direct_room_open(user=carol, username="dave")
    return {
        "ours": ours,
        "theirs": theirs,
        "mine_direct": mine_direct,
        "other_direct": other_direct,
        "carol": carol,
    }
