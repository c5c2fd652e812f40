"""Pages: the room page: its newest messages, permalinks, who may read it, the
composer with and without JavaScript, and the way back to the lobby or /watch/.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete
from chat.models import Message, ReadState, Room
from tests.helpers import logged_in, send
from tests.views_helpers import world as world  # a fixture

pytestmark = pytest.mark.django_db


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
