"""The JSON API's reads: /api/rooms/ and /api/rooms/<slug>/messages/, their shapes,
pages, limits and query counts.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete
from chat.models import ReadState, Room
from tests.api_helpers import MESSAGE_KEYS, assert_json_error
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db


# The contract's keys, and the site's extensions (docs/protocol.md).
ROOM_KEYS = {"slug", "name", "description", "kind", "archived", "online", "unread"} | {
    "mentions",
    "notify",
    "role",
}


# --- /api/rooms/ -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/rooms/", "/api/rooms/general/messages/"])
def test_api_answers_401_json_not_a_redirect(client, general, path):
    response = client.get(path)
    assert_json_error(response, 401, "unauthenticated")
    assert "Location" not in response.headers


@pytest.mark.redis
def test_rooms_shape_and_visibility(alice, bob, make_user, general):
    carol = make_user("carol")
    Room.objects.create(name="Attic", slug="attic", description="old stuff", archived=True)
    ours = Room.objects.create(name="Ours", slug="ours", kind=Room.Kind.PRIVATE)
    ours.members.add(alice, bob)
    theirs = Room.objects.create(name="Theirs", slug="theirs", kind=Room.Kind.PRIVATE)
    theirs.members.add(bob)
    mine = direct_room_open(user=alice, username="bob")
    other = direct_room_open(user=bob, username="carol")
    send(general, bob)
    send(general, bob)
    send(general, alice)
    ReadState.objects.create(user=alice, room=general, last_read_number=1)
    send(mine, bob)
    deleted = send(mine, bob)
    message_delete(room_id=mine.pk, number=deleted.number, user=bob)
    send(other, carol)

    response = logged_in(alice).get("/api/rooms/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"rooms"}
    rooms = {room["slug"]: room for room in body["rooms"]}
    for room in body["rooms"]:
        assert set(room) == ROOM_KEYS
        assert isinstance(room["online"], int) and room["online"] >= 0
    assert set(rooms) == {"general", "random", "attic", "ours", mine.slug}
    assert rooms["general"] == {
        "slug": "general",
        "name": "General",
        "description": general.description,
        "kind": "public",
        "archived": False,
        "online": 0,
        "unread": 1,
        "mentions": 0,
        "notify": "mentions",
        "role": None,
    }
    assert rooms[mine.slug]["notify"] == "all"  # a direct conversation tells of everything
    assert rooms["attic"]["archived"] is True
    assert rooms["attic"]["description"] == "old stuff"
    assert rooms["ours"]["kind"] == "private"
    assert rooms["ours"]["unread"] == 0
    # A direct room is named after the other person, with the deleted message not counted.
    assert rooms[mine.slug]["kind"] == "direct"
    assert rooms[mine.slug]["name"] == "bob"
    assert rooms[mine.slug]["unread"] == 1

    bob_rooms = {room["slug"]: room for room in logged_in(bob).get("/api/rooms/").json()["rooms"]}
    assert set(bob_rooms) == {"general", "random", "attic", "ours", "theirs", mine.slug, other.slug}
    assert bob_rooms[mine.slug]["name"] == "alice"
    assert bob_rooms[other.slug]["name"] == "carol"
    assert bob_rooms["general"]["unread"] == 1  # alice's; his own are read


@pytest.mark.redis
def test_rooms_query_count_does_not_grow_with_rooms(
    alice, bob, make_user, django_assert_num_queries
):
    client = logged_in(alice)

    def add_rooms(start: int, stop: int) -> None:
        for index in range(start, stop):
            Room.objects.create(name=f"Room {index}", slug=f"room-{index}")
            private = Room.objects.create(
                name=f"Private {index}", slug=f"private-{index}", kind=Room.Kind.PRIVATE
            )
            private.members.add(alice, bob)
            partner = make_user(f"partner{index}")
            send(direct_room_open(user=alice, username=partner.username), partner)

    add_rooms(0, 2)
    with CaptureQueriesContext(connection) as few:
        response = client.get("/api/rooms/")
    assert response.status_code == 200
    add_rooms(2, 20)
    with django_assert_num_queries(len(few)):
        response = client.get("/api/rooms/")
    rooms = response.json()["rooms"]
    assert len(rooms) == 2 + 20 * 3
    assert {room["name"] for room in rooms if room["kind"] == "direct"} == {
        f"partner{index}" for index in range(20)
    }


# --- /api/rooms/<slug>/messages/ ------------------------------------------------------------


@pytest.fixture
def busy(alice, bob, general):
    """general with 120 messages, alternately bob's (odd) and alice's (even)."""
    for number in range(1, 121):
        send(general, bob if number % 2 else alice, body=f"m{number}")
    return general


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [message["id"] for message in response.json()["messages"]]


def test_messages_newest_page_by_default(alice, busy):
    response = logged_in(alice).get("/api/rooms/general/messages/")
    assert ids(response) == list(range(71, 121))
    body = response.json()
    assert set(body) == {"messages", "has_more"}
    assert body["has_more"] is True
    first = body["messages"][0]
    assert set(first) == MESSAGE_KEYS
    assert first["room"] == "general"
    assert first["user"] == "bob"
    assert first["body"] == "m71"
    assert first["edited"] is False
    assert first["created"].endswith("Z")


def test_messages_paging_back_with_before(alice, busy):
    client = logged_in(alice)
    response = client.get("/api/rooms/general/messages/?before=71")
    assert ids(response) == list(range(21, 71))
    assert response.json()["has_more"] is True
    response = client.get("/api/rooms/general/messages/?before=21")
    assert ids(response) == list(range(1, 21))
    assert response.json()["has_more"] is False
    response = client.get("/api/rooms/general/messages/?before=11&limit=10")
    assert ids(response) == list(range(1, 11))
    assert response.json()["has_more"] is False
    response = client.get("/api/rooms/general/messages/?before=12&limit=10")
    assert ids(response) == list(range(2, 12))
    assert response.json()["has_more"] is True
    response = client.get("/api/rooms/general/messages/?before=1")
    assert ids(response) == []
    assert response.json()["has_more"] is False


def test_messages_paging_forward_with_after(alice, busy):
    client = logged_in(alice)
    response = client.get("/api/rooms/general/messages/?after=0")
    assert ids(response) == list(range(1, 51))
    assert response.json()["has_more"] is True
    response = client.get("/api/rooms/general/messages/?after=100&limit=20")
    assert ids(response) == list(range(101, 121))
    assert response.json()["has_more"] is False
    response = client.get("/api/rooms/general/messages/?after=99&limit=20")
    assert ids(response) == list(range(100, 120))
    assert response.json()["has_more"] is True
    response = client.get("/api/rooms/general/messages/?after=120")
    assert ids(response) == []
    assert response.json()["has_more"] is False
    # Both cursors: the messages strictly between, forward from `after`.
    response = client.get("/api/rooms/general/messages/?after=10&before=15")
    assert ids(response) == [11, 12, 13, 14]
    assert response.json()["has_more"] is False


def test_messages_around_a_permalink(alice, busy):
    client = logged_in(alice)
    response = client.get("/api/rooms/general/messages/?around=60&limit=10")
    assert ids(response) == list(range(55, 65))
    body = response.json()
    assert (body["has_more"], body["has_older"], body["has_newer"]) == (True, True, True)
    response = client.get("/api/rooms/general/messages/?around=120&limit=10")
    assert ids(response) == list(range(111, 121))
    assert (response.json()["has_older"], response.json()["has_newer"]) == (True, False)
    # Forward pages say so in the same words.
    assert client.get("/api/rooms/general/messages/?after=100&limit=5").json()["has_newer"] is True


def test_messages_limits(alice, busy):
    client = logged_in(alice)
    assert ids(client.get("/api/rooms/general/messages/?limit=1")) == [120]
    assert ids(client.get("/api/rooms/general/messages/?limit=100")) == list(range(21, 121))


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=",
        "limit=1.5",
        "limit=%EF%BC%95",
        "before=abc",
        "before=-1",
        "before=1.5",
        "before=1e3",
        "before=",
        "after=abc",
        "after=-5",
        "after=%20",
        "around=0",
        "around=x",
        "around=5&before=9",
        "around=5&after=1",
    ],
)
def test_messages_bad_parameters_are_400(alice, general, query):
    send(general, alice)
    response = logged_in(alice).get(f"/api/rooms/general/messages/?{query}")
    assert_json_error(response, 400, "bad_request")


def test_messages_huge_cursors_are_fine(alice, busy):
    client = logged_in(alice)
    response = client.get(f"/api/rooms/general/messages/?before={10**25}")
    assert ids(response) == list(range(71, 121))
    assert response.json()["has_more"] is True
    response = client.get(f"/api/rooms/general/messages/?after={10**25}")
    assert ids(response) == []


def test_messages_leave_deleted_ones_out(alice, general):
    for _ in range(4):
        send(general, alice)
    message_delete(room_id=general.pk, number=2, user=alice)
    assert ids(logged_in(alice).get("/api/rooms/general/messages/")) == [1, 3, 4]


def test_messages_of_unknown_and_others_private_rooms_are_404(alice, bob, general):
    secret = Room.objects.create(name="Secret", slug="secret", kind=Room.Kind.PRIVATE)
    secret.members.add(bob)
    send(secret, bob, body="the plan")
    direct = direct_room_open(user=bob, username="alice")
    client = logged_in(alice)
    for slug in ("nope", "secret"):
        response = client.get(f"/api/rooms/{slug}/messages/")
        assert_json_error(response, 404, "not_found")
        assert "the plan" not in response.content.decode()
    assert client.get(f"/api/rooms/{direct.slug}/messages/").status_code == 200
    assert ids(logged_in(bob).get("/api/rooms/secret/messages/")) == [1]


def test_client_id_is_shown_to_its_author_only(alice, bob, general):
    send(general, alice, body="from alice", client_id="alice-1")
    send(general, bob, body="from bob", client_id="bob-1")
    as_alice = logged_in(alice).get("/api/rooms/general/messages/").json()["messages"]
    as_bob = logged_in(bob).get("/api/rooms/general/messages/").json()["messages"]
    assert [m["client_id"] for m in as_alice] == ["alice-1", None]
    assert [m["client_id"] for m in as_bob] == [None, "bob-1"]


def test_messages_query_count_does_not_grow_with_page_size(
    alice, bob, make_user, general, django_assert_num_queries
):
    authors = [alice, bob] + [make_user(f"writer{index}") for index in range(8)]
    for index in range(100):
        send(general, authors[index % len(authors)])
    client = logged_in(alice)
    with CaptureQueriesContext(connection) as few:
        assert len(ids(client.get("/api/rooms/general/messages/?limit=2"))) == 2
    with django_assert_num_queries(len(few)):
        assert len(ids(client.get("/api/rooms/general/messages/?limit=100"))) == 100


def test_bodies_come_back_as_sent(alice, general):
    body = '<b>bold</b> \U0001f600 \u2028 "quoted"'
    send(general, alice, body=body)
    response = logged_in(alice).get("/api/rooms/general/messages/")
    assert response.json()["messages"][0]["body"] == body
    # Strict JSON: the response parses with a parser that refuses NaN and friends.
    json.loads(response.content, parse_constant=lambda name: pytest.fail(name))
