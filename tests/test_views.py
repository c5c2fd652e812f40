"""Pages: accounts, the lobby, room pages, direct rooms, security headers, fresh-install rooms."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete
from chat.models import Message, ReadState, Room
from tests.conftest import PASSWORD
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a much longer passphrase 42"


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


# --- signup -----------------------------------------------------------------


def test_signup_page_renders_a_form_with_csrf(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    content = response.content.decode()
    for name in ("username", "password1", "password2", "csrfmiddlewaretoken"):
        assert f'name="{name}"' in content


@pytest.mark.redis
def test_signup_creates_the_user_logs_in_and_redirects_to_the_lobby(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "dora", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    user = get_user_model().objects.get(username="dora")
    assert user.check_password(NEW_PASSWORD)
    assert client.session[SESSION_KEY] == str(user.pk)
    lobby = client.get("/")
    assert lobby.status_code == 200
    assert lobby.context["user"] == user


@pytest.mark.parametrize(
    "data, field",
    [
        ({"username": "dora", "password1": NEW_PASSWORD, "password2": "different"}, "password2"),
        ({"username": "", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, "username"),
        ({"username": "alice", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, "username"),
        (
            {"username": "bad name!", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
            "username",
        ),
        ({"username": "dora", "password1": "123", "password2": "123"}, "password2"),
    ],
)
@pytest.mark.redis
def test_bad_signup_re_renders_with_errors(client, alice, data, field):
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors.get(field)
    # The errors are shown to the user, not just computed.
    assert 'role="alert"' in response.content.decode()
    assert not get_user_model().objects.filter(username="dora").exists()
    assert SESSION_KEY not in client.session
    assert get_user_model().objects.count() == 1


@pytest.mark.redis
def test_signup_enforces_csrf():
    client = Client(enforce_csrf_checks=True)
    data = {"username": "dora", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert client.post("/accounts/signup/", data).status_code == 403
    assert not get_user_model().objects.filter(username="dora").exists()
    # With the token from the form, the same POST works.
    client.get("/accounts/signup/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/signup/", {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="dora").exists()


def test_signup_when_logged_in_goes_to_the_lobby(alice):
    client = logged_in(alice)
    response = client.get("/accounts/signup/")
    assert response.status_code == 302 and response.headers["Location"] == "/"


# --- login / logout ---------------------------------------------------------------


@pytest.mark.redis
def test_login_logs_in_and_redirects(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.session[SESSION_KEY] == str(alice.pk)


@pytest.mark.redis
def test_login_follows_next(client, alice, general):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD, "next": "/rooms/general/"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/rooms/general/"


@pytest.mark.redis
def test_login_never_redirects_off_site(client, alice):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD, "next": "https://evil.example.com/"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.redis
def test_login_with_a_bad_password_or_inactive_user_fails(client, alice, make_user):
    make_user("sleeper", is_active=False)
    for username, password in (("alice", "wrong"), ("sleeper", PASSWORD), ("nobody", PASSWORD)):
        response = client.post("/accounts/login/", {"username": username, "password": password})
        assert response.status_code == 200
        assert response.context["form"].non_field_errors()
        assert 'role="alert"' in response.content.decode()
        assert SESSION_KEY not in client.session


def test_login_enforces_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert SESSION_KEY not in client.session


@pytest.mark.redis
def test_logout_is_a_post(alice):
    client = logged_in(alice)
    # A GET must not log anyone out (a link or an <img> could).
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts/login/"
    assert SESSION_KEY not in client.session
    assert client.get("/").status_code == 302


def test_logout_enforces_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/accounts/logout/").status_code == 403
    assert client.session[SESSION_KEY] == str(alice.pk)


@pytest.mark.redis
def test_base_page_has_a_logout_form_with_csrf(alice, general):
    content = logged_in(alice).get("/").content.decode()
    assert 'action="/accounts/logout/"' in content
    assert 'method="post"' in content
    assert 'name="csrfmiddlewaretoken"' in content


# --- login required ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/rooms/general/", "/rooms/nope/", "/dm/bob/"])
def test_pages_require_login(client, general, bob, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/accounts/login/?next={path}"


def test_inactive_users_session_counts_as_logged_out(alice, general):
    client = logged_in(alice)
    alice.is_active = False
    alice.save()
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_login_and_signup_are_open(client, path):
    assert client.get(path).status_code == 200


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


# --- the room page ------------------------------------------------------------------


def test_room_page_shows_the_newest_messages(alice, bob, general):
    for index in range(1, 56):
        send(general, bob if index % 2 else alice, body=f"message number {index}")
    message_delete(room_id=general.pk, number=54, user=alice)
    response = logged_in(alice).get("/rooms/general/")
    assert response.status_code == 200
    numbers = [message.number for message in response.context["messages"]]
    # The newest 50 visible ones, ascending.
    assert numbers == [n for n in range(5, 56) if n != 54]
    assert response.context["has_more"] is True
    assert response.context["last_id"] == 55
    content = response.content.decode()
    assert "message number 55" in content
    assert "message number 54" not in content
    assert "message number 4<" not in content
    assert 'data-slug="general"' in content
    assert 'data-last-id="55"' in content


def test_a_permalink_opens_the_room_around_its_message(alice, bob, general):
    for index in range(1, 121):
        send(general, bob, body=f"message number {index}")
    response = logged_in(alice).get("/rooms/general/?around=60")
    assert response.status_code == 200
    numbers = [message.number for message in response.context["messages"]]
    assert numbers == list(range(35, 85))
    assert (response.context["has_more"], response.context["has_newer"]) == (True, True)
    # The socket picks up after the room's newest: the page reads forward to it.
    assert response.context["last_id"] == 120
    content = response.content.decode()
    assert 'data-around="60"' in content and 'data-has-newer="true"' in content

    # Near the newest, the page is the newest one, as without a permalink.
    response = logged_in(alice).get("/rooms/general/?around=119")
    assert response.context["has_newer"] is False
    assert response.context["last_id"] == 120


@pytest.mark.parametrize("around", ["x", "0", "-1", "1.5", ""])
def test_a_permalink_naming_no_number_is_404(alice, general, around):
    send(general, alice)
    assert logged_in(alice).get(f"/rooms/general/?around={around}").status_code == 404


def test_a_permalink_into_a_room_one_may_not_read_is_404(alice, bob, world):
    carol = world["carol"]
    send(Room.objects.get(slug="theirs"), carol, body="secret")
    assert logged_in(alice).get("/rooms/theirs/?around=1").status_code == 404


def test_room_page_escapes_message_bodies(alice, general):
    send(general, alice, body="<script>alert(1)</script>")
    send(general, alice, body='"><img src=x onerror=alert(2)>')
    response = logged_in(alice).get("/rooms/general/")
    content = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<script>alert(1)</script>" not in content
    assert "<img src=x" not in content
    assert "&lt;img src=x onerror=alert(2)&gt;" in content


def test_room_page_of_private_and_direct_rooms_is_for_members_only(alice, bob, world):
    carol = world["carol"]
    assert logged_in(alice).get("/rooms/ours/").status_code == 200
    assert logged_in(alice).get("/rooms/theirs/").status_code == 404
    assert logged_in(carol).get("/rooms/theirs/").status_code == 200
    direct_slug = world["mine_direct"].slug
    assert logged_in(bob).get(f"/rooms/{direct_slug}/").status_code == 200
    assert logged_in(carol).get(f"/rooms/{direct_slug}/").status_code == 404


@pytest.mark.parametrize("slug", ["nope", "GENERAL", "dm-1-2", "a" * 60])
def test_room_page_of_an_unknown_room_is_404(alice, general, slug):
    assert logged_in(alice).get(f"/rooms/{slug}/").status_code == 404


def test_direct_room_page_is_titled_by_the_other_person(alice, bob, world):
    slug = world["mine_direct"].slug
    assert logged_in(alice).get(f"/rooms/{slug}/").context["title"] == "bob"
    assert logged_in(bob).get(f"/rooms/{slug}/").context["title"] == "alice"


def test_archived_room_page_loads_history_with_the_composer_disabled(alice, general):
    send(general, alice, body="old news")
    Room.objects.filter(pk=general.pk).update(archived=True)
    response = logged_in(alice).get("/rooms/general/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "old news" in content
    assert 'data-archived="true"' in content
    assert "disabled" in content


@pytest.mark.parametrize("kind", [Room.Kind.PUBLIC, Room.Kind.DIRECT])
def test_room_page_query_count_does_not_grow_with_messages(
    alice, bob, make_user, kind, django_assert_num_queries
):
    if kind == Room.Kind.DIRECT:
        room = direct_room_open(user=alice, username="bob")
    else:
        room = Room.objects.create(name="Busy", slug="busy")
    client = logged_in(alice)
    authors = [alice, bob] + [make_user(f"writer{index}") for index in range(3)]

    for index in range(5):
        send(room, authors[index % len(authors)] if kind == Room.Kind.PUBLIC else alice)
    with CaptureQueriesContext(connection) as few:
        response = client.get(f"/rooms/{room.slug}/")
    assert len(response.context["messages"]) == 5
    # Session, user, room, membership, page, its reactions, its mentions, its
    # attachments, read mark, notification setting, the reader's mute (+ the other
    # member of a direct room).
    assert len(few) <= 12
    for index in range(55):
        send(room, authors[index % len(authors)] if kind == Room.Kind.PUBLIC else bob)
    with django_assert_num_queries(len(few)):
        response = client.get(f"/rooms/{room.slug}/")
    assert response.status_code == 200
    assert len(response.context["messages"]) == 50


def test_room_page_carries_the_readers_read_mark(alice, bob, general):
    for _ in range(4):
        send(general, bob)
    client = logged_in(alice)
    # Never read: the unread divider goes before the first of the others' messages.
    assert 'data-last-read="0"' in client.get("/rooms/general/").content.decode()
    ReadState.objects.create(user=alice, room=general, last_read_number=3)
    response = client.get("/rooms/general/")
    assert response.context["last_read"] == 3
    assert 'data-last-read="3"' in response.content.decode()
    # Bob's own mark is his, not alice's.
    assert 'data-last-read="0"' in logged_in(bob).get("/rooms/general/").content.decode()


def test_room_page_composer_posts_and_says_it_needs_javascript(alice, general):
    content = logged_in(alice).get("/rooms/general/").content.decode()
    composer = re.search(r'<form class="composer"[^>]*>', content)
    assert composer is not None
    # A submit without JavaScript never puts the message in a URL.
    assert 'method="post"' in composer.group(0)
    assert "<noscript>" in content and "needs JavaScript" in content
    for element in ('id="body"', 'id="send"', 'id="char-count"', 'id="send-error"', 'id="typing"'):
        assert element in content, element
    assert '<label for="body"' in content
    assert 'id="online"' in content and 'id="room-notice"' in content


def test_room_page_post_without_javascript_stores_nothing_and_goes_back(alice, general):
    client = logged_in(alice)
    response = client.post("/rooms/general/", {"body": "sent without a script"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/rooms/general/"
    assert not Message.objects.filter(room=general).exists()
    # Hidden rooms stay hidden to a POST as to a GET.
    assert client.post("/rooms/nope/", {"body": "x"}).status_code == 404


def test_room_page_shows_the_archived_notice(alice, general):
    Room.objects.filter(pk=general.pk).update(archived=True)
    content = logged_in(alice).get("/rooms/general/").content.decode()
    assert re.search(r'id="room-notice"[^>]*>This room is archived<', content)
    assert re.search(r'<textarea[^>]*id="body"[^>]*disabled', content)
    assert re.search(r'<button[^>]*id="send"[^>]*disabled', content)


def test_room_page_marks_own_messages(alice, bob, general):
    send(general, alice, body="mine")
    send(general, bob, body="theirs")
    content = logged_in(alice).get("/rooms/general/").content.decode()
    assert re.search(
        r'<li class="message mine" data-id="1" data-author="alice" data-message=', content
    )
    assert re.search(r'<li class="message" data-id="2" data-author="bob" data-message=', content)
    # Each carries its message object, which the page renders like a live one.
    [payload] = re.findall(r'data-id="2" data-author="bob" data-message="([^"]*)"', content)
    assert json.loads(html.unescape(payload))["body"] == "theirs"


@pytest.mark.redis
def test_lobby_shows_counts_and_loads_its_script(alice, bob, general):
    send(general, bob)
    content = logged_in(alice).get("/").content.decode()
    assert '<li class="room-item" data-slug="general"' in content
    assert 'data-online="0">0 online<' in content
    assert 'class="unread" aria-label="1 unread">1<' in content
    assert '<script type="module" src="/static/chat/lobby.js">' in content


# --- CSRF failures -----------------------------------------------------------------


def test_csrf_failure_is_the_sites_own_page(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert "This form has expired" in content
    assert 'href="/static/chat/chat.css"' in content
    # Not Django's page, whose inline styles the CSP would refuse.
    assert "<style" not in content and " style=" not in content


def test_csrf_failure_under_the_api_stays_json(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/api/token/", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


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


# --- security headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path, login",
    [
        ("/", True),
        ("/rooms/general/", True),
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
    ],
)
@pytest.mark.redis
def test_pages_carry_a_strict_content_security_policy(alice, general, path, login):
    client = logged_in(alice) if login else Client()
    response = client.get(path)
    assert response.status_code == 200
    directives = csp_directives(response)
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert "*" not in script_src
    assert directives.get("object-src") == ["'none'"]
    # Nothing in the page needs an inline script: all code comes from static files.
    content = response.content.decode()
    assert "<script>" not in content
    assert " onclick=" not in content and " onload=" not in content


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


def test_viewers_not_signed_in_go_back_to_the_live_rooms_they_may_watch(client, general):
    """The room page's "All rooms" leads a viewer to /watch/, not to the log-in page."""
    stage = Room.objects.create(
        name="Stage", slug="stage", kind=Room.Kind.BROADCAST, public_viewing=True
    )
    Room.objects.create(name="Closed", slug="closed", kind=Room.Kind.BROADCAST)
    page = client.get("/rooms/stage/").content.decode()
    assert '<a class="back-link" href="/watch/">' in page
    listing = client.get("/watch/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert 'href="/rooms/stage/"' in text and "Stage" in text
    assert "/rooms/closed/" not in text and "/rooms/general/" not in text
    del stage


def test_signed_in_people_go_back_to_the_lobby(alice, general):
    page = logged_in(alice).get("/rooms/general/").content.decode()
    assert '<a class="back-link" href="/">' in page
