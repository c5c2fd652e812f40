"""What the tests of rooms people make (tests/test_rooms*.py) share: Ann, Ben, Ann's
private room, and the check that a refusal changed nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from chat.actions import membership as actions
from chat.models import Invite, Membership, Room


def snapshot() -> tuple[Any, ...]:
    """Everything these calls may change: a refusal must leave it as it was."""
    rooms = list(Room.objects.order_by("pk").values_list("slug", "name", "description", "archived"))
    members = list(Membership.objects.order_by("pk").values_list("room_id", "user_id", "role"))
    invites = list(Invite.objects.order_by("pk").values_list("code", "uses", "revoked"))
    return rooms, members, invites


@pytest.fixture
def ann(make_user):
    return make_user("ann")


@pytest.fixture
def ben(make_user):
    return make_user("ben")


@pytest.fixture
def team(ann):
    """A private room Ann owns."""
    return actions.room_create(user=ann, name="Team", kind="private", description="ours")
