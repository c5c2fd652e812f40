"""Pages: the lobby and its unread counts, direct rooms opened from /dm/ and the limit
on new ones, and the rooms a fresh install starts with.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete
from chat.models import Message, ReadState, Room
from tests.helpers import logged_in, send
from tests.views_helpers import world as world  # a fixture

pytestmark = pytest.mark.django_db


@pytest.mark.redis
def test_lobby_lists_public_and_own_rooms_only(alice, general, world):
    response = logged_in(alice).get("/")
    assert response.status_code == 200
    # Your rooms: those one is in; Browse rooms: the public ones one is not in.
    mine = {room["slug"] for room in response.context["rooms"]}
    browse = {room["slug"] for room in response.context["browse"]}
    assert {"ours", world["mine_direct"].slug} <= mine
    assert {"general", "random"} <= browse
    slugs = mine | browse
    assert "theirs" not in slugs
    assert world["other_direct"].slug not in slugs
    content = response.content.decode()
    assert 'href="/rooms/general/"' in content
    assert 'href="/rooms/ours/"' in content
    assert f'href="/rooms/{world["mine_direct"].slug}/"' in content
    assert "/rooms/theirs/" not in content and "keep out" not in content
    assert world["other_direct"].slug not in content
    assert "carol" not in content and "dave" not in content


@pytest.mark.redis
def test_lobby_shows_unread_counts(alice, bob, general, world):
    carol = world["carol"]
    # general: 2 of bob's, one of alice's, then alice reads up to 2; then 3 more of
    # others', one deleted, and one of alice's own.
    send(general, bob)
    send(general, alice)
    ReadState.objects.create(user=alice, room=general, last_read_number=2)
    send(general, bob)
    send(general, carol)
    deleted = send(general, bob)
    message_delete(room_id=general.pk, number=deleted.number, user=bob)
    send(general, alice)
    send(general, carol)
    # ours: never read, 2 of bob's and 1 of alice's.
    send(world["ours"], bob)
    send(world["ours"], alice)
    send(world["ours"], bob)
    # theirs: invisible to alice, so never counted anywhere.
    send(world["theirs"], bob)

    response = logged_in(alice).get("/")
    listed = response.context["rooms"] + response.context["browse"]
    unread = {room["slug"]: room["unread"] for room in listed}
    # general: after #2, others' visible messages are #3 (bob), #4 (carol), #7 (carol).
    assert unread["general"] == 3
    assert unread["ours"] == 2
    assert unread["random"] == 0
    assert unread[world["mine_direct"].slug] == 0
    content = response.content.decode()
    assert 'aria-label="3 unread"' in content
    assert 'aria-label="2 unread"' in content
    assert 'aria-label="0 unread"' not in content

    # Bob sees his own messages as read, alice's as unread.
    bob_lobby = logged_in(bob).get("/").context
    bob_rooms = bob_lobby["rooms"] + bob_lobby["browse"]
    bob_unread = {room["slug"]: room["unread"] for room in bob_rooms}
    assert bob_unread["general"] == 4  # alice's #2 and #6, carol's #4 and #7
    assert bob_unread["ours"] == 1
    assert bob_unread["theirs"] == 0


@pytest.mark.redis
def test_lobby_query_count_does_not_grow_with_rooms(
    alice, bob, general, make_user, django_assert_num_queries
):
    client = logged_in(alice)

    def add_rooms(start: int, stop: int) -> None:
        for index in range(start, stop):
            public = Room.objects.create(name=f"Room {index}", slug=f"room-{index}")
            private = Room.objects.create(
                name=f"Private {index}", slug=f"private-{index}", kind=Room.Kind.PRIVATE
            )
            private.members.add(alice, bob)
            partner = make_user(f"partner{index}")
            direct = direct_room_open(user=alice, username=partner.username)
            for room in (public, private, direct):
                send(room, bob if room is not direct else partner)
                send(room, alice)
            ReadState.objects.create(user=alice, room=public, last_read_number=1)

    add_rooms(0, 2)
    with CaptureQueriesContext(connection) as few:
        response = client.get("/")
    few_rooms = len(response.context["rooms"]) + len(response.context["browse"])
    # Session, user, then one query for the rooms with their unread counts.
    assert len(few) <= 4
    add_rooms(2, 20)
    with django_assert_num_queries(len(few)):
        response = client.get("/")
    assert response.status_code == 200
    listed = len(response.context["rooms"]) + len(response.context["browse"])
    assert listed - few_rooms == 18 * 3


# --- direct rooms ------------------------------------------------------------------


@pytest.mark.redis
def test_dm_redirects_to_the_room_page(alice, bob):
    client = logged_in(alice)
    response = client.get("/dm/bob/")
    room = Room.objects.get(kind=Room.Kind.DIRECT)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/rooms/{room.slug}/"
    assert set(room.members.all()) == {alice, bob}
    assert client.get(response.headers["Location"]).status_code == 200
    # Both sides land in the same room.
    assert logged_in(bob).get("/dm/alice/").headers["Location"] == f"/rooms/{room.slug}/"
    assert Room.objects.filter(kind=Room.Kind.DIRECT).count() == 1


@pytest.mark.parametrize("username", ["nobody", "sleeper", "alice"])
def test_dm_to_unknown_inactive_or_oneself_is_404(alice, make_user, username):
    make_user("sleeper", is_active=False)
    assert logged_in(alice).get(f"/dm/{username}/").status_code == 404
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


# --- fresh install ------------------------------------------------------------------------


def test_data_migration_created_general_and_random():
    rooms = {room.slug: room for room in Room.objects.filter(slug__in=["general", "random"])}
    assert set(rooms) == {"general", "random"}
    for room in rooms.values():
        assert room.kind == Room.Kind.PUBLIC
        assert room.archived is False
        assert room.last_message_number == 0
        assert not Message.objects.filter(room=room).exists()
    assert rooms["general"].name == "General"
    assert rooms["random"].name == "Random"


# --- direct conversations: a limit on new ones ----------------------------------------


@pytest.mark.redis
def test_new_direct_conversations_are_limited_and_opening_one_is_free(alice, make_user, settings):
    """Each new conversation tells the other person's pages; opening one is not limited."""
    settings.CHAT_DIRECT_RATE_LIMIT = (2, 3600)
    people = [make_user(f"p{i}") for i in range(3)]
    client = logged_in(alice)
    assert [client.get(f"/dm/{p.username}/").status_code for p in people[:2]] == [302, 302]
    refused = client.get(f"/dm/{people[2].username}/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "new conversations" in refused.content.decode()
    assert not Room.objects.filter(kind=Room.Kind.DIRECT, members=people[2]).exists()
    # The ones that exist open as often as asked.
    assert [client.get(f"/dm/{people[0].username}/").status_code for _ in range(5)] == [302] * 5
    assert client.get("/dm/nobody/").status_code == 404
