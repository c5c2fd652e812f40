"""Security: hidden rooms stay hidden on every path, text stays text, forms need CSRF.

A private or direct room does not exist for a non-member (docs/protocol-v1.md, Rooms):
the page, the API, the socket, a resume and the lobby answer exactly as for a
slug that names nothing, and nothing of the room (name, slug, description,
messages) reaches them. The Origin rule of the socket is tested in-process in
test_consumer.py and against real daphne in integration/test_security_live.py.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.core import signing
from django.test import Client

from chat.domain.direct import direct_room_open
from chat.models import Message, Room
from chat.web.tokens import SALT, token_issue
from tests.conftest import PASSWORD, Socket
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
ORIGIN = (b"origin", b"http://localhost")
UNKNOWN = "no-such-room"

PRIVATE_NAME = "Project Nightjar"
PRIVATE_SLUG = "nightjar-ops"
PRIVATE_DESCRIPTION = "acquisition of Wrenfield Holdings"
PRIVATE_BODIES = ["the code is 4471-zebra", "board meets on the ninth"]
DIRECT_BODIES = ["meet me at the old pier", "bring the blue folder"]
PUBLIC_BODIES = ["hello everyone", "lunch at noon?"]


# --- fixtures and helpers ------------------------------------------------------------


@pytest.fixture
def carol(make_user) -> AbstractBaseUser:
    return make_user("carol")


@pytest.fixture
def world(alice, bob, carol, general) -> dict[str, Any]:
    """A private room (alice), a direct room (alice & bob), messages everywhere; carol in none."""
    private = Room.objects.create(
        name=PRIVATE_NAME,
        slug=PRIVATE_SLUG,
        description=PRIVATE_DESCRIPTION,
        kind=Room.Kind.PRIVATE,
    )
    private.members.add(alice)
    direct = direct_room_open(user=alice, username="bob")
    for body in PUBLIC_BODIES:
        send(general, alice, body=body)
    for body in PRIVATE_BODIES:
        send(private, alice, body=body)
    for index, body in enumerate(DIRECT_BODIES):
        send(direct, alice if index % 2 == 0 else bob, body=body)
    return {"private": private, "direct": direct}


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


@database_sync_to_async
def session_cookie(user: AbstractBaseUser) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


async def first_output_is_close(sock: Socket) -> int:
    """The close code, which must be the socket's first output: no frame comes before it."""
    output = await sock.output(3)
    assert output["type"] == "websocket.close", output
    return int(output["code"])


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Page(HTMLParser):
    """An HTML page as elements: (tag, attributes, text content), in document order."""

    def __init__(self, content: bytes | str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.open: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.feed(content.decode() if isinstance(content, bytes) else content)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = (tag, dict(attrs), [])
        self.elements.append(element)
        if tag not in VOID_TAGS:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        for _, _, text in self.open:
            text.append(data)

    def matching(self, tag: str, css_class: str | None) -> list[tuple[dict[str, str | None], str]]:
        """(attributes, text) of each `tag` element, of class `css_class` if given."""
        return [
            (attrs, "".join(text))
            for name, attrs, text in self.elements
            if name == tag
            and (css_class is None or css_class in (attrs.get("class") or "").split())
        ]

    def find(self, tag: str, css_class: str | None = None) -> list[dict[str, str | None]]:
        return [attrs for attrs, _ in self.matching(tag, css_class)]

    def texts(self, tag: str, css_class: str | None = None) -> list[str]:
        return [text for _, text in self.matching(tag, css_class)]

    def inline_code(self) -> list[str]:
        """Whatever would run or style the page from inside it, which the CSP forbids."""
        found = []
        for tag, attrs, text in self.elements:
            if tag == "script" and (not attrs.get("src") or "".join(text).strip()):
                found.append(f"inline <script>: {''.join(text)[:80]!r}")
            for name, value in attrs.items():
                if name.startswith("on"):
                    found.append(f"<{tag} {name}=...>")
                if name == "style":
                    found.append(f"<{tag} style=...>")
                if name in {"href", "src", "action", "formaction"} and (
                    value or ""
                ).strip().lower().startswith("javascript:"):
                    found.append(f"<{tag} {name}=javascript:...>")
        return found


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


# --- CSRF on every form -------------------------------------------------------------------


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = 0
    for path in sorted((BASE_DIR / "templates").rglob("*.html")):
        for form in re.findall(r"<form\b.*?</form>", path.read_text(), re.S | re.I):
            if re.search(r"""method=["']?post""", form, re.I):
                forms += 1
                assert "{% csrf_token %}" in form, (path, form[:120])
    assert forms >= 3  # login, signup, logout


def post_forms(response) -> list[dict[str, Any]]:
    """Each <form method=post> of a page: its action and its hidden fields."""
    forms = []
    for form in re.findall(r"<form\b.*?</form>", response.content.decode(), re.S | re.I):
        page = Page(form)
        attrs = page.find("form")[0]
        if (attrs.get("method") or "get").lower() != "post":
            continue
        hidden = {
            field["name"]: field.get("value") or ""
            for field in page.find("input")
            if field.get("type") == "hidden" and field.get("name")
        }
        forms.append({"action": attrs.get("action") or response.request["PATH_INFO"], **hidden})
    return forms


@pytest.mark.parametrize(
    "path, member",
    [
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
        ("/", True),
        ("/rooms/general/", True),
        ("/dm/bob/", True),
    ],
)
@pytest.mark.redis
def test_every_post_form_on_the_site_needs_its_csrf_token(alice, bob, general, path, member):
    client = Client(enforce_csrf_checks=True)
    if member:
        client.force_login(alice)
    # The page sets the CSRF cookie: only the token in the form is missing below.
    response = client.get(path, follow=True)
    assert response.status_code == 200
    forms = post_forms(response)
    assert forms, "every page has a POST form: login, signup or the logout button"
    for form in forms:
        token = form.pop("csrfmiddlewaretoken", "")
        assert token, (path, form)
        action = form.pop("action")
        data = {"username": "mallory", "password": "x", "password1": "x", "password2": "x"}
        refused = client.post(action, {**data, **form})
        assert refused.status_code == 403, action
        assert Page(refused.content).inline_code() == []
        # The same POST with the form's token gets past the check.
        accepted = client.post(action, {**data, **form, "csrfmiddlewaretoken": token})
        assert accepted.status_code in {200, 302}, action
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_admin_changes_need_the_csrf_token(world):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client(enforce_csrf_checks=True)
    login = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert login.status_code == 403
    client.force_login(root)
    private = world["private"]
    data = {"name": "Renamed", "slug": private.slug, "kind": "private", "description": ""}
    assert client.post(f"/admin/chat/room/{private.pk}/change/", data).status_code == 403
    action = {"action": "archive", "_selected_action": [private.pk]}
    assert client.post("/admin/chat/room/", action).status_code == 403
    private.refresh_from_db()
    assert (private.name, private.archived) == (PRIVATE_NAME, False)


# --- tokens ----------------------------------------------------------------------------------


def forged_tokens(alice, bob) -> dict[str, str]:
    """Tokens naming bob made from alice's, or signed without the site's key and salt."""
    genuine = token_issue(user=alice)
    payload, stamp, signature = genuine.rsplit(":", 2)
    bob_payload = {"u": bob.pk, "p": bob.get_session_auth_hash()[:16]}
    bobs = signing.dumps(bob_payload, salt=SALT).split(":")[0]
    later = signing.b62_encode(signing.b62_decode(stamp) + 10 * django_settings.CHAT_TOKEN_TTL)
    return {
        # alice's signature on bob's payload.
        "payload swapped": f"{bobs}:{stamp}:{signature}",
        # The same key under another salt: a value signed for some other purpose.
        "another salt": signing.dumps(bob_payload, salt="django.contrib.sessions"),
        "no salt": signing.dumps(bob_payload),
        "another key": signing.dumps(bob_payload, salt=SALT, key="not-the-site-secret-" * 3),
        # alice's own token, its lifetime stretched by a later timestamp.
        "timestamp moved": f"{payload}:{later}:{signature}",
        "unsigned": signing.b64_encode(f'{{"u":{bob.pk}}}'.encode()).decode(),
    }


def test_a_token_cannot_be_altered_to_name_another_user(alice, bob, general):
    for label, token in forged_tokens(alice, bob).items():
        response = Client().get("/api/rooms/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, label
        assert response.json()["error"] == "unauthenticated"


@pytest.mark.django_db(transaction=True)
async def test_a_socket_token_cannot_be_altered_to_name_another_user(connect, alice, bob, general):
    forged = await sync_to_async(forged_tokens)(alice, bob)
    for label, token in forged.items():
        sock, _ = await connect(None, token=token, expect_welcome=False)
        assert await first_output_is_close(sock) == 4401, label


# --- manage.py check --deploy ------------------------------------------------------------------


def documented_environment() -> dict[str, str]:
    """.env.example's variables, with a real secret where it says to put one."""
    variables = {}
    for line in (BASE_DIR / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip()
    assert variables["DJANGO_SECRET_KEY"].startswith("change-me")
    variables["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    return variables


@pytest.mark.processes
def test_check_deploy_is_clean_under_the_documented_environment():
    # test_settings.py runs the check with the HTTPS variables alone; this one runs
    # it with .env.example as shipped, so that the documented file cannot drift into
    # a configuration the check refuses (debug on, a short HSTS, plain cookies...).
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "CHAT_")) and name not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(documented_environment())
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
