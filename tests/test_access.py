"""chat.domain.access.room_for_user, the one gate, and Room.objects.visible_to."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from chat.domain.access import room_for_user
from chat.domain.direct import direct_room_open
from chat.errors import ChatError
from chat.models import Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def rooms(alice, bob, make_user, general):
    """general (public), secret (private: alice), dm alice & carol, an archived public room."""
    carol = make_user("carol")
    secret = Room.objects.create(name="Secret", slug="secret", kind=Room.Kind.PRIVATE)
    secret.members.add(alice)
    direct = direct_room_open(user=alice, username="carol")
    attic = Room.objects.create(name="Attic", slug="attic", archived=True)
    return {"general": general, "secret": secret, "direct": direct, "attic": attic, "carol": carol}


def gate(user, slug) -> Room | str:
    """The room, or the ChatError code of the refusal."""
    try:
        return room_for_user(user=user, slug=slug)
    except ChatError as error:
        return error.code


def test_public_rooms_are_open_to_every_logged_in_user(rooms, alice, bob):
    assert gate(alice, "general") == rooms["general"]
    assert gate(bob, "general") == rooms["general"]
    # Archived rooms still load (read-only, not hidden).
    assert gate(bob, "attic") == rooms["attic"]


def test_private_room_exists_only_for_members(rooms, alice, bob):
    assert gate(alice, "secret") == rooms["secret"]
    # For a non-member it is exactly like a slug that names nothing.
    assert gate(bob, "secret") == "not_found"
    assert gate(bob, "no-such-room") == "not_found"


def test_direct_room_exists_only_for_its_two_members(rooms, alice, bob):
    slug = rooms["direct"].slug
    assert gate(alice, slug) == rooms["direct"]
    assert gate(rooms["carol"], slug) == rooms["direct"]
    assert gate(bob, slug) == "not_found"


def test_membership_changes_take_effect(rooms, bob):
    rooms["secret"].members.add(bob)
    assert gate(bob, "secret") == rooms["secret"]
    rooms["secret"].members.remove(bob)
    assert gate(bob, "secret") == "not_found"


def test_a_staff_user_who_is_not_a_member_does_not_see_private_rooms(rooms, make_user):
    # Staff moderate in the admin; on the site they are members like anyone else.
    staff = make_user("mod", is_staff=True)
    assert gate(staff, "secret") == "not_found"


@pytest.mark.parametrize("slug", ["", "nope", "GENERAL", "general/", "a" * 51, None, 5])
def test_unknown_or_malformed_slug_is_not_found(rooms, alice, slug):
    assert gate(alice, slug) == "not_found"


def test_anonymous_and_inactive_users_are_refused(rooms, alice):
    assert gate(AnonymousUser(), "general") == "forbidden"
    assert gate(AnonymousUser(), "secret") == "forbidden"
    alice.is_active = False
    alice.save()
    assert gate(alice, "general") == "forbidden"
    assert gate(alice, "secret") == "forbidden"


def test_visible_to_lists_public_and_the_users_own_rooms(rooms, alice, bob):
    def slugs(user) -> set[str]:
        return set(Room.objects.visible_to(user).values_list("slug", flat=True))

    # `random` comes from the data migration.
    public = {"general", "attic", "random"} & set(Room.objects.values_list("slug", flat=True))
    assert slugs(alice) == public | {"secret", rooms["direct"].slug}
    assert slugs(rooms["carol"]) == public | {rooms["direct"].slug}
    assert slugs(bob) == public
    assert slugs(AnonymousUser()) == set()


def test_visible_to_has_no_duplicates_for_rooms_with_many_members(rooms, alice, bob):
    rooms["secret"].members.add(bob, rooms["carol"])
    rooms["general"].members.add(alice, bob)  # members of a public room, e.g. set in the admin
    listed = list(Room.objects.visible_to(alice).values_list("slug", flat=True))
    assert len(listed) == len(set(listed))
    assert listed.count("secret") == 1
    assert listed.count("general") == 1


def test_visible_to_agrees_with_the_gate(rooms, alice, bob):
    for user in (alice, bob, rooms["carol"]):
        visible = set(Room.objects.visible_to(user))
        for room in Room.objects.all():
            assert (gate(user, room.slug) == room) == (room in visible), (user, room)
