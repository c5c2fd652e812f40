"""Security: text stays text. Every page has a strict Content-Security-Policy and no
inline code, and hostile message bodies and room names reach the page, the JSON and
the socket as text, unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from chat.models import Room
from tests.conftest import PASSWORD
from tests.helpers import logged_in, send
from tests.security_helpers import BASE_DIR, PRIVATE_SLUG, Page
from tests.security_helpers import carol as carol  # a fixture
from tests.security_helpers import world as world  # a fixture

pytestmark = pytest.mark.django_db


# --- Content-Security-Policy and text that stays text ------------------------------------


def fetch_page(name: str, world: dict[str, Any], alice, carol):
    """One HTML page of the site, as its user sees it."""
    if name == "lobby":
        return logged_in(alice).get("/")
    if name == "room":
        return logged_in(alice).get("/rooms/general/")
    if name == "private room":
        return logged_in(alice).get(f"/rooms/{PRIVATE_SLUG}/")
    if name == "dm target":
        client = logged_in(carol)
        return client.get("/dm/alice/", follow=True)
    if name == "login":
        return Client().get("/accounts/login/")
    if name == "login with errors":
        return Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    if name == "signup":
        return Client().get("/accounts/signup/")
    if name == "signup with errors":
        return Client().post("/accounts/signup/", {"username": "x", "password1": "1"})
    if name == "404":
        return Client().get("/no-such-page/")
    if name == "hidden room 404":
        return logged_in(carol).get(f"/rooms/{PRIVATE_SLUG}/")
    if name == "csrf failure":
        return Client(enforce_csrf_checks=True).post(
            "/accounts/login/", {"username": "alice", "password": PASSWORD}
        )
    raise AssertionError(name)


PAGES = {
    "lobby": 200,
    "room": 200,
    "private room": 200,
    "dm target": 200,
    "login": 200,
    "login with errors": 200,
    "signup": 200,
    "signup with errors": 200,
    "404": 404,
    "hidden room 404": 404,
    "csrf failure": 403,
}


def csp_directives(response) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = [word.lower() for word in words[1:]]
    return directives


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.redis
def test_every_html_page_has_a_strict_csp_and_no_inline_code(world, alice, carol, name):
    response = fetch_page(name, world, alice, carol)
    assert response.status_code == PAGES[name]
    assert response.headers["Content-Type"].startswith("text/html")
    directives = csp_directives(response)
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src, "no script-src and no default-src: scripts from anywhere"
    for source in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:", "http:"):
        assert source not in script_src
    assert "https:" not in script_src
    # Nothing in the page relies on what the policy forbids.
    assert Page(response.content).inline_code() == []


def test_templates_have_no_inline_code():
    # Also covers the branches no test renders (archived rooms, form errors).
    for path in sorted((BASE_DIR / "templates").rglob("*.html")):
        source = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), path
        assert not re.search(r"\son[a-z]+\s*=", source, re.IGNORECASE), path
        assert not re.search(r"\sstyle\s*=", source, re.IGNORECASE), path
        assert "<style" not in source, path
        assert "javascript:" not in source.lower(), path


def test_the_pages_scripts_render_text_as_text():
    # The pages' modules build elements with textContent; these would parse HTML.
    modules = sorted((BASE_DIR / "static" / "chat").glob("*.js"))
    assert {path.name for path in modules} >= {"room.js", "message-view.js", "lobby.js"}
    for path in modules:
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, (path.name, sink)
        assert "new Function" not in source, path.name


HOSTILE_BODIES = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "{{ user.password }}",
    "{% csrf_token %}{% debug %}",
    "&lt;b&gt; is already escaped &amp;",
    "</p></li></ol><script src=//evil.example/x.js></script>",
]


def test_hostile_bodies_are_text_in_the_page_and_unchanged_in_json(alice, general):
    for body in HOSTILE_BODIES:
        send(general, alice, body=body)
    client = logged_in(alice)
    response = client.get("/rooms/general/")
    page = Page(response.content)
    # Each body is exactly the text of its paragraph: escaped, not interpreted,
    # and template syntax is never evaluated.
    assert page.texts("p", "body") == HOSTILE_BODIES
    assert page.inline_code() == []
    assert [(a.get("type"), a.get("src")) for a in page.find("script")] == [
        ("module", "/static/chat/attention.js"),
        ("module", "/static/chat/room.js"),
    ]
    assert page.find("img") == [] and page.find("svg") == []
    content = response.content.decode()
    assert alice.password not in content
    assert content.count('name="csrfmiddlewaretoken"') == 2  # the logout form's and the composer's
    api = client.get("/api/rooms/general/messages/")
    assert [message["body"] for message in api.json()["messages"]] == HOSTILE_BODIES
    # JSON is never sniffed into HTML.
    assert api.headers["Content-Type"] == "application/json"
    assert api.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.redis
def test_room_names_and_descriptions_are_text_everywhere(alice):
    name = '<img src=x onerror=alert("name")>'
    description = '"><script>alert("description")</script>'
    Room.objects.create(name=name, slug="hostile", description=description)
    client = logged_in(alice)
    lobby = Page(client.get("/").content)
    assert name in lobby.texts("span", "room-name")
    assert description in lobby.texts("span", "room-description")
    assert lobby.inline_code() == [] and lobby.find("img") == []
    room = Page(client.get("/rooms/hostile/").content)
    assert room.texts("h1") == [name]
    assert room.texts("p", "room-description") == [description]
    assert room.texts("title") == [f"{name} · Chatsite"]
    assert room.find("textarea")[0]["placeholder"] == f"Message {name}"
    assert room.inline_code() == [] and room.find("img") == []
    rooms = {r["slug"]: r for r in client.get("/api/rooms/").json()["rooms"]}
    assert (rooms["hostile"]["name"], rooms["hostile"]["description"]) == (name, description)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frames_without_presence")
@pytest.mark.redis
async def test_hostile_bodies_are_unchanged_on_the_socket(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    for body in HOSTILE_BODIES:
        await a.send({"type": "message.send", "body": body})
        assert (await a.receive_type("message"))["body"] == body
        assert (await b.receive_type("message"))["body"] == body
    await b.send({"type": "history"})
    history = await b.receive_type("history")
    assert [message["body"] for message in history["messages"]] == HOSTILE_BODIES
