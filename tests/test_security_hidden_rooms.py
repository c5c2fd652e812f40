"""Security: hidden rooms stay hidden on every path.

A private or direct room does not exist for a non-member (docs/protocol-v1.md, Rooms):
the page, the API, the socket, a resume and the lobby answer exactly as for a
slug that names nothing, and nothing of the room (name, slug, description,
messages) reaches them. A member removed loses every path at once, and the admin
is for staff only. The Origin rule of the socket is tested in-process in
test_consumer_access.py and against real daphne in integration/test_security_live.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.test import Client

from chat.models import Message, Room
from chat.web.tokens import token_issue
from tests.helpers import logged_in, session_cookie
from tests.security_helpers import (
    DIRECT_BODIES,
    PRIVATE_BODIES,
    PRIVATE_DESCRIPTION,
    PRIVATE_NAME,
    PRIVATE_SLUG,
    PUBLIC_BODIES,
    Page,
    first_output_is_close,
)
from tests.security_helpers import carol as carol  # a fixture
from tests.security_helpers import world as world  # a fixture

pytestmark = pytest.mark.django_db


ORIGIN = (b"origin", b"http://localhost")


UNKNOWN = "no-such-room"


def secrets_of(world: dict[str, Any]) -> list[str]:
    """Every string that names or quotes a hidden room."""
    direct = world["direct"]
    return [
        PRIVATE_NAME,
        PRIVATE_SLUG,
        PRIVATE_DESCRIPTION,
        *PRIVATE_BODIES,
        direct.slug,
        direct.name,
        *DIRECT_BODIES,
    ]


def assert_nothing_of(world: dict[str, Any], content: bytes | str) -> None:
    text = content.decode() if isinstance(content, bytes) else content
    # Unescaped too: "alice &amp; bob" in HTML is the direct room's name.
    for candidate in (text, html.unescape(text)):
        for secret in secrets_of(world):
            assert secret not in candidate, secret


def hidden_slug(world: dict[str, Any], kind: str) -> str:
    return str(world[kind].slug)


def bearer(user: AbstractBaseUser) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_issue(user=user)}"}


# --- hidden rooms: the page, /dm/, the lobby ------------------------------------------


def page_bytes(response) -> bytes:
    """A page as a stranger could compare it: the CSRF token of its log-out form is
    masked afresh for every response, whatever the page, and is left out."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", response.content)


@pytest.mark.parametrize("kind", ["private", "direct"])
def test_hidden_room_page_is_the_unknown_room_404(world, carol, kind):
    client = logged_in(carol)
    unknown = client.get(f"/rooms/{UNKNOWN}/")
    hidden = client.get(f"/rooms/{hidden_slug(world, kind)}/")
    assert unknown.status_code == hidden.status_code == 404
    # Not 403, and not a different page: nothing tells a guessed slug from a real one.
    assert page_bytes(hidden) == page_bytes(unknown)
    assert b"csrfmiddlewaretoken" in hidden.content  # what page_bytes leaves out is there
    assert_nothing_of(world, hidden.content)


@pytest.mark.redis
def test_dm_never_opens_someone_elses_conversation(world, alice, bob, carol):
    client = logged_in(carol)
    for other in (alice, bob):
        response = client.get(f"/dm/{other.username}/")
        assert response.status_code == 302
        location = response.headers["Location"]
        assert location != f"/rooms/{world['direct'].slug}/"
        room = Room.objects.get(slug=location.split("/")[2])
        assert room.kind == Room.Kind.DIRECT
        assert set(room.members.all()) == {carol, other}
        page = client.get(location)
        assert page.status_code == 200
        assert_nothing_of(world, page.content)
    # alice and bob's conversation still has exactly its two members.
    assert set(world["direct"].members.all()) == {alice, bob}


@pytest.mark.redis
def test_lobby_shows_nothing_of_hidden_rooms(world, carol):
    response = logged_in(carol).get("/")
    assert response.status_code == 200
    # Carol is in no room: the public ones are hers to browse, the rest unseen.
    assert response.context["rooms"] == []
    slugs = {room["slug"] for room in response.context["browse"]}
    assert slugs == {"general", "random"}
    assert_nothing_of(world, response.content)


def test_public_room_page_shows_only_its_own_messages(world, carol):
    response = logged_in(carol).get("/rooms/general/")
    assert response.status_code == 200
    assert Page(response.content).texts("p", "body") == PUBLIC_BODIES
    assert_nothing_of(world, response.content)


# --- hidden rooms: the JSON API -----------------------------------------------------------


def carol_clients(carol) -> dict[str, tuple[Client, dict[str, str]]]:
    """carol on the API both ways: (client, extra request headers)."""
    return {"session": (logged_in(carol), {}), "token": (Client(), bearer(carol))}


@pytest.mark.redis
def test_api_rooms_omit_hidden_rooms(world, carol):
    for auth, (client, extra) in carol_clients(carol).items():
        response = client.get("/api/rooms/", **extra)
        assert response.status_code == 200, auth
        assert {room["slug"] for room in response.json()["rooms"]} == {"general", "random"}
        assert_nothing_of(world, response.content)


@pytest.mark.parametrize("kind", ["private", "direct"])
def test_api_messages_of_a_hidden_room_are_the_unknown_room_404(world, carol, kind):
    slug = hidden_slug(world, kind)
    for auth, (client, extra) in carol_clients(carol).items():
        for query in ("", "?after=0", "?before=3&limit=100", "?limit=0", "?after=x"):
            unknown = client.get(f"/api/rooms/{UNKNOWN}/messages/{query}", **extra)
            hidden = client.get(f"/api/rooms/{slug}/messages/{query}", **extra)
            assert unknown.status_code == hidden.status_code == 404, (auth, query)
            # The same body, even for a malformed cursor: the room is looked up first,
            # so a 400 cannot tell a hidden room from a missing one.
            assert hidden.content == unknown.content, (auth, query)
            assert hidden.json()["error"] == "not_found"
            assert_nothing_of(world, hidden.content)


def test_api_history_of_a_public_room_holds_only_its_own_messages(world, carol):
    client = logged_in(carol)
    for query in ("", "?after=0", f"?before={10**6}", "?after=0&limit=100"):
        response = client.get(f"/api/rooms/general/messages/{query}")
        assert response.status_code == 200
        assert [m["body"] for m in response.json()["messages"]] == PUBLIC_BODIES
        assert {m["room"] for m in response.json()["messages"]} == {"general"}
        assert_nothing_of(world, response.content)


# --- hidden rooms: the socket --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["private", "direct"])
async def test_socket_to_a_hidden_room_closes_like_an_unknown_room(connect, world, carol, kind):
    slug = hidden_slug(world, kind)
    cookie = await session_cookie(carol)
    for options in (
        {},
        {"after": 0},
        {"headers": [ORIGIN, cookie]},
        {"headers": [ORIGIN, cookie], "after": 0},
    ):
        user = None if "headers" in options else carol
        for target in (UNKNOWN, slug):
            sock, _ = await connect(user, target, expect_welcome=False, **options)
            # No welcome, no replayed message: the close is the only thing sent.
            assert await first_output_is_close(sock) == 4404, (target, options)
    # A malformed `after` is refused before the room is looked up: 4400 for both.
    for target in (UNKNOWN, slug):
        sock, _ = await connect(carol, target, after="x", expect_welcome=False)
        assert await first_output_is_close(sock) == 4400


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frames_without_presence")
@pytest.mark.redis
async def test_socket_of_a_public_room_never_carries_hidden_messages(connect, world, carol):
    # A resume from 0 replays the room's whole history: general's messages only.
    sock, welcome = await connect(carol, "general", after=0)
    assert welcome["room"]["slug"] == "general"
    replayed = [await sock.receive_type("message") for _ in PUBLIC_BODIES]
    assert [frame["body"] for frame in replayed] == PUBLIC_BODIES
    assert await sock.nothing()
    # History pages, newest and from beyond the newest id, hold the same.
    for frame in ({"type": "history"}, {"type": "history", "before": 10**6, "limit": 100}):
        await sock.send(frame)
        history = await sock.receive_type("history")
        assert [message["body"] for message in history["messages"]] == PUBLIC_BODIES
        assert {message["room"] for message in history["messages"]} == {"general"}
        assert_nothing_of(world, str(history))


# --- a member removed from a private room ---------------------------------------------


@pytest.mark.redis
def test_a_removed_member_loses_every_http_path_on_the_next_request(world, alice):
    client = logged_in(alice)
    token = bearer(alice)
    assert client.get(f"/rooms/{PRIVATE_SLUG}/").status_code == 200
    assert client.get(f"/api/rooms/{PRIVATE_SLUG}/messages/", **token).status_code == 200
    assert PRIVATE_NAME in client.get("/").content.decode()

    world["private"].members.remove(alice)

    unknown_page = client.get(f"/rooms/{UNKNOWN}/")
    page = client.get(f"/rooms/{PRIVATE_SLUG}/")
    assert page.status_code == 404 and page_bytes(page) == page_bytes(unknown_page)
    for extra in ({}, token):
        unknown = client.get(f"/api/rooms/{UNKNOWN}/messages/", **extra)
        messages = client.get(f"/api/rooms/{PRIVATE_SLUG}/messages/", **extra)
        assert messages.status_code == 404 and messages.content == unknown.content
        rooms = client.get("/api/rooms/", **extra).json()["rooms"]
        assert PRIVATE_SLUG not in {room["slug"] for room in rooms}
    lobby = client.get("/").content.decode()
    assert PRIVATE_NAME not in lobby and PRIVATE_SLUG not in lobby
    assert PRIVATE_DESCRIPTION not in lobby


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
async def test_a_removed_member_cannot_open_a_new_socket(connect, world, alice):
    token = await sync_to_async(token_issue)(user=alice)
    sock, welcome = await connect(alice, PRIVATE_SLUG, token=token)
    assert welcome["room"]["slug"] == PRIVATE_SLUG
    await sock.close()

    await database_sync_to_async(world["private"].members.remove)(alice)

    cookie = await session_cookie(alice)
    for options in (
        {"token": token},
        {"token": token, "after": 0},
        {"headers": [ORIGIN, cookie]},
        {"headers": [ORIGIN, cookie], "after": 0},
    ):
        sock, _ = await connect(None, PRIVATE_SLUG, expect_welcome=False, **options)
        assert await first_output_is_close(sock) == 4404, options


# --- the admin ------------------------------------------------------------------------


def test_admin_is_for_staff_only_and_shows_nothing_to_others(world, carol, make_user):
    private = world["private"]
    message = Message.objects.filter(room=private).first()
    assert message is not None
    paths = [
        "/admin/",
        "/admin/chat/room/",
        f"/admin/chat/room/{private.pk}/change/",
        f"/admin/chat/room/?q={PRIVATE_SLUG}",
        "/admin/chat/message/?q=zebra",
        f"/admin/chat/message/{message.pk}/change/",
    ]
    client = logged_in(carol)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login/")
        assert_nothing_of(world, response.content)
    # Staff without the chat permissions see no room or message either.
    clerk = make_user("clerk", is_staff=True)
    client = logged_in(clerk)
    for path in paths[1:]:
        response = client.get(path)
        assert response.status_code == 403, path
        assert_nothing_of(world, response.content)
    assert_nothing_of(world, client.get("/admin/").content)
    # With the view permission, staff do see them: the admin is where rooms are run.
    clerk.user_permissions.add(Permission.objects.get(codename="view_room"))
    assert PRIVATE_NAME in logged_in(clerk).get("/admin/chat/room/").content.decode()
