"""The site's own pages for 400, 403, 404 and 500, and JSON under /api/ (chat/web/errorpages.py).

pytest-django runs with DEBUG off, as production does: the handlers below are the ones
a visitor meets, not Django's debug pages.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from chat.models import Room
from chat.web import errorpages
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


def error_card(response) -> str:
    """The error page's own part: what it says, without the header around it."""
    content = response.content.decode()
    match = re.search(r'<section class="[^"]*error-page".*?</section>', content, re.S)
    assert match, content[:2000]
    return match.group(0)


def assert_site_page(response, status: int) -> str:
    """The response is the site's own page (its layout, its style sheet), with `status`."""
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert '<header class="topbar">' in content
    assert 'href="/static/chat/chat.css"' in content
    assert f"Error {status}" in content
    # The site's CSP refuses inline styles and scripts: Django's plain pages carry them.
    assert "<style" not in content and " style=" not in content
    return error_card(response)


def test_tests_run_with_debug_off():
    assert django_settings.DEBUG is False


@pytest.fixture
def theirs(bob):
    """A private room alice is not in."""
    room = Room.objects.create(slug="theirs", name="Theirs", kind=Room.Kind.PRIVATE)
    room.members.add(bob)
    return room


# --- 404 ----------------------------------------------------------------------------------


def test_a_private_room_reads_exactly_like_a_missing_one(alice, theirs):
    client = logged_in(alice)
    private = assert_site_page(client.get("/rooms/theirs/"), 404)
    missing = assert_site_page(client.get("/rooms/nope/"), 404)
    assert private == missing
    assert "There is no room at this address, or it is private" in missing
    assert 'href="/">Back to the rooms</a>' in missing
    assert "Theirs" not in private and "theirs" not in private
    # The same for a permalink into it, and its live page.
    assert assert_site_page(client.get("/rooms/theirs/?around=1"), 404) == missing
    assert assert_site_page(client.get("/rooms/theirs/live/"), 404) == missing


def test_a_malformed_permalink_is_404_with_the_way_to_the_room(alice, general):
    for around in ("abc", "0", "-1", "1.5", ""):
        card = assert_site_page(logged_in(alice).get(f"/rooms/general/?around={around}"), 404)
        assert "No such message" in card
        assert "This link names no message" in card
        assert 'href="/rooms/general/">Open General</a>' in card


def test_a_conversation_with_oneself_is_404_saying_why(alice):
    card = assert_site_page(logged_in(alice).get("/dm/alice/"), 404)
    assert "You cannot open a conversation with yourself" in card
    assert 'href="/people/">Find someone to talk to</a>' in card
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


def test_an_unknown_or_inactive_persons_conversation_reads_the_same(alice, make_user):
    make_user("sleeper", is_active=False)
    client = logged_in(alice)
    unknown = assert_site_page(client.get("/dm/nobody/"), 404)
    inactive = assert_site_page(client.get("/dm/sleeper/"), 404)
    assert "There is nobody called “nobody” to talk to here." in unknown
    assert inactive == unknown.replace("nobody called “nobody”", "nobody called “sleeper”")
    assert 'href="/people/">Find someone to talk to</a>' in unknown
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


def test_a_name_no_one_could_have_is_not_repeated(alice):
    card = assert_site_page(logged_in(alice).get("/dm/Call%20555%20for%20help/"), 404)
    assert "There is nobody by that name to talk to here." in card
    assert "555" not in card


def test_an_unknown_address_is_the_sites_page(alice):
    card = assert_site_page(logged_in(alice).get("/no/such/page/"), 404)
    assert "Page not found" in card and "There is nothing at this address" in card
    # Signed out too, with the header's log-in.
    response = Client().get("/no/such/page/")
    assert_site_page(response, 404)
    assert 'href="/accounts/login/"' in response.content.decode()


def test_a_missing_file_is_the_sites_page(alice):
    card = assert_site_page(logged_in(alice).get("/files/999999/a.png"), 404)
    assert "There is no file at this address, or you may not open it." in card


def test_only_the_sites_own_reasons_are_shown(alice, settings):
    settings.ROOT_URLCONF = "tests.error_urls"
    card = assert_site_page(logged_in(alice).get("/test-errors/missing/"), 404)
    assert "ask an owner for a new link" in card


# --- 403 ----------------------------------------------------------------------------------


def test_403_is_the_sites_page_with_the_sites_own_reason(alice, settings):
    settings.ROOT_URLCONF = "tests.error_urls"
    client = logged_in(alice)
    card = assert_site_page(client.get("/test-errors/refused/"), 403)
    assert "Owners only" in card and "Only the room&#x27;s owners may change it." in card
    card = assert_site_page(client.get("/test-errors/denied/"), 403)
    assert "You may not open this page" in card
    assert "secret" not in card and 'href="/">Back to the rooms</a>' in card


def test_the_csrf_page_still_says_the_form_expired(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


# --- 400 ----------------------------------------------------------------------------------


def test_400_is_the_sites_page(alice, settings):
    settings.ROOT_URLCONF = "tests.error_urls"
    card = assert_site_page(logged_in(alice).get("/test-errors/suspicious/"), 400)
    assert "could not read this request" in card and "secret" not in card
    # A Host the site does not serve.
    response = Client().get("/", HTTP_HOST="evil.example")
    assert_site_page(response, 400)


# --- 500 ----------------------------------------------------------------------------------


def test_500_is_the_sites_page_and_tells_nothing_of_the_failure(alice, settings):
    settings.ROOT_URLCONF = "tests.error_urls"
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.get("/test-errors/fails/")
    card = assert_site_page(response, 500)
    content = response.content.decode()
    assert "Something went wrong" in card and 'href="/">Back to the rooms</a>' in card
    assert "secret" not in content and "hunter2" not in content
    # Rendered without the request: no account, no form, no script of the signed-in pages.
    assert "Log out" not in content and "alice" not in content
    assert "<script" not in content


def test_a_real_view_failing_answers_the_500_page(alice, monkeypatch):
    def broken(user):
        raise RuntimeError("the lobby failed")

    monkeypatch.setattr("chat.web.views.pages.rooms_payload", broken)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    assert_site_page(client.get("/"), 500)


@pytest.mark.django_db(False)
def test_the_500_page_renders_without_a_database_or_request_context():
    # No database here: pytest-django refuses any query this test would make.
    request = RequestFactory().get("/rooms/general/")
    response = errorpages.server_error(request)
    assert response.status_code == 500
    content = response.content.decode()
    assert "Something went wrong" in content and '<header class="topbar">' in content


def test_the_500_page_of_last_resort(monkeypatch):
    def broken(name, using=None):
        raise ValueError("Missing staticfiles manifest entry")

    monkeypatch.setattr("chat.web.errorpages.loader.get_template", broken)
    response = errorpages.server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b"<style" not in response.content


# --- the JSON API keeps its JSON -------------------------------------------------------------


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/api/no-such-thing/", 404, "not_found"),
        ("/api/rooms/general/nope/", 404, "not_found"),
        ("/api/test-errors/refused/", 403, "forbidden"),
        ("/api/test-errors/suspicious/", 400, "bad_request"),
        ("/api/test-errors/fails/", 500, "internal_error"),
    ],
)
def test_the_api_never_answers_html(alice, settings, path, status, code):
    settings.ROOT_URLCONF = "tests.error_urls"
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code and body["detail"]
    assert "secret" not in body["detail"]


def test_the_api_answers_a_bad_host_in_json():
    response = Client().get("/api/rooms/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
