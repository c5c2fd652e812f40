"""The JSON API: tokens, rooms, message pages and the health check."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from channels.layers import channel_layers
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete
from chat.models import ReadState, Room
from tests.conftest import PASSWORD
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db

# The contract's keys, and the site's extensions (docs/protocol.md).
MESSAGE_KEYS = {"id", "room", "user", "body", "created", "client_id", "edited"} | {
    "reply_to",
    "reactions",
    "mentions",
    "attachments",
}
ROOM_KEYS = {"slug", "name", "description", "kind", "archived", "online", "unread"} | {
    "mentions",
    "notify",
    "role",
}


def post_json(client: Client, path: str, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type="application/json", **extra)


def token_for(client: Client, username: str, password: str = PASSWORD) -> str:
    response = post_json(client, "/api/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == code


# --- /api/token/ -----------------------------------------------------------------


@pytest.mark.redis
def test_token_for_good_credentials(client, alice, settings):
    response = post_json(client, "/api/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_in"}
    assert isinstance(body["token"], str) and body["token"]
    assert body["expires_in"] == settings.CHAT_TOKEN_TTL == 300
    settings.CHAT_TOKEN_TTL = 120
    response = post_json(client, "/api/token/", {"username": "alice", "password": PASSWORD})
    assert response.json()["expires_in"] == 120


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'["alice", "pw"]',
        b'"alice"',
        b"null",
        b"42",
        b'{"username": "alice", "password": NaN}',
    ],
)
def test_token_refuses_a_malformed_body(client, alice, body):
    response = client.post("/api/token/", body, content_type="application/json")
    assert_json_error(response, 400, "bad_request")
    assert "token" not in response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice"},
        {"password": PASSWORD},
        {"user": "alice", "pass": PASSWORD},
        {"username": 1, "password": PASSWORD},
        {"username": "alice", "password": None},
        {"username": ["alice"], "password": PASSWORD},
        {"username": "alice", "password": {"p": PASSWORD}},
    ],
)
def test_token_refuses_missing_or_non_string_fields(client, alice, body):
    response = post_json(client, "/api/token/", body)
    assert_json_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    "username, password",
    [("alice", "wrong"), ("alice", ""), ("nobody", PASSWORD), ("sleeper", PASSWORD)],
)
@pytest.mark.redis
def test_token_refuses_bad_credentials_and_inactive_users(
    client, alice, make_user, username, password
):
    make_user("sleeper", is_active=False)
    response = post_json(client, "/api/token/", {"username": username, "password": password})
    assert_json_error(response, 401, "unauthenticated")
    assert "token" not in response.json()


@pytest.mark.redis
def test_token_with_credentials_needs_no_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    token = token_for(client, "alice")
    assert client.get("/api/rooms/", **bearer(token)).status_code == 200


@pytest.mark.redis
def test_token_with_credentials_ignores_a_session(alice, bob):
    # The body names the user: a logged-in session POSTing bob's credentials gets bob's.
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    token = token_for(client, "bob")
    response = Client().get("/api/rooms/", **bearer(token))
    assert response.status_code == 200


@pytest.mark.redis
def test_session_gets_a_token_for_itself_only_with_csrf(alice, general, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post_json(client, "/api/token/", {}).status_code == 403
    # A page sets the CSRF cookie; the token goes in the header, as the page sends it.
    client.get("/")
    csrf = client.cookies["csrftoken"].value
    response = post_json(client, "/api/token/", {}, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == settings.CHAT_TOKEN_TTL
    # The token is alice's, usable without the session.
    rooms = Client().get("/api/rooms/", **bearer(body["token"]))
    assert rooms.status_code == 200


@pytest.mark.parametrize("enforce", [False, True])
def test_empty_body_without_a_session_is_401(enforce):
    client = Client(enforce_csrf_checks=enforce)
    response = post_json(client, "/api/token/", {})
    assert_json_error(response, 401, "unauthenticated")


def test_token_endpoint_is_post_only(client, alice):
    assert client.get("/api/token/").status_code == 405


# --- tokens on the API ---------------------------------------------------------------


@pytest.mark.redis
def test_bearer_token_authenticates_the_api(client, alice, general):
    token = token_for(client, "alice")
    response = Client().get("/api/rooms/", **bearer(token))
    assert response.status_code == 200
    assert "general" in {room["slug"] for room in response.json()["rooms"]}
    response = Client().get("/api/rooms/general/messages/", **bearer(token))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer ", "Bearer nonsense", "Bearer a:b:c", "Token x", "Basic YWxpY2U6cHc="],
)
def test_bad_authorization_is_401(alice, general, authorization):
    response = Client().get("/api/rooms/", HTTP_AUTHORIZATION=authorization)
    assert_json_error(response, 401, "unauthenticated")


@pytest.mark.redis
def test_tampered_token_is_401(client, alice):
    token = token_for(client, "alice")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_json_error(Client().get("/api/rooms/", **bearer(tampered)), 401, "unauthenticated")


@pytest.mark.redis
def test_expired_token_is_401(client, alice, general, monkeypatch, settings):
    token = token_for(client, "alice")
    issued = time.time()

    def at(seconds_later: float) -> None:
        # signing.loads measures a token's age with the module's `time.time()`.
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: issued + seconds_later))

    at(settings.CHAT_TOKEN_TTL - 5)
    assert Client().get("/api/rooms/", **bearer(token)).status_code == 200
    at(settings.CHAT_TOKEN_TTL + 2)
    assert_json_error(Client().get("/api/rooms/", **bearer(token)), 401, "unauthenticated")
    # The lifetime is the setting's, read when the token is checked.
    settings.CHAT_TOKEN_TTL = 3600
    assert Client().get("/api/rooms/", **bearer(token)).status_code == 200


@pytest.mark.redis
def test_password_change_invalidates_old_tokens(client, alice, general):
    old = token_for(client, "alice")
    alice.set_password("a brand new passphrase 99")
    alice.save()
    assert_json_error(Client().get("/api/rooms/", **bearer(old)), 401, "unauthenticated")
    new = token_for(client, "alice", "a brand new passphrase 99")
    assert Client().get("/api/rooms/", **bearer(new)).status_code == 200


@pytest.mark.redis
def test_deactivated_users_token_is_401(client, alice, general):
    token = token_for(client, "alice")
    alice.is_active = False
    alice.save()
    assert_json_error(Client().get("/api/rooms/", **bearer(token)), 401, "unauthenticated")


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


# --- /healthz ------------------------------------------------------------------------


@pytest.mark.redis
def test_healthz_ok_against_the_real_services(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "db": "ok", "redis": "ok"}


@pytest.fixture
def closed_layer(settings):
    """The channel layer pointed at a port where nothing listens."""
    channel_layers.backends.clear()
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["hosts"][0]["address"] = "redis://127.0.0.1:1/0"
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.redis
def test_healthz_reports_a_dead_channel_layer(client, closed_layer):
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 6
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["db"] == "ok"
    assert body["redis"] == "error"
    assert "redis_error" in body


@pytest.mark.redis
def test_healthz_says_why_only_to_staff_and_to_local_probes(closed_layer, make_user):
    """The error text names hosts and versions: not for anyone on the internet."""
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    for client in (outsider, proxied, logged_in(make_user("dora"))):
        client.defaults["REMOTE_ADDR"] = client.defaults.get("REMOTE_ADDR", "203.0.113.9")
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "db": "ok", "redis": "error"}
    staff = logged_in(make_user("root", is_staff=True))
    staff.defaults["REMOTE_ADDR"] = "203.0.113.9"
    assert "redis_error" in staff.get("/healthz").json()
    assert "redis_error" in Client(REMOTE_ADDR="::1").get("/healthz").json()


@pytest.mark.redis
def test_healthz_needs_no_login_and_no_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    assert client.get("/healthz").status_code == 200
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


# --- bad JSON --------------------------------------------------------------------------


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("body", [DEEP, '{"a": ' * 50_000 + "1" + "}" * 50_000, "NaN", b"\xff"])
@pytest.mark.redis
def test_json_too_deep_or_not_strict_is_400_not_500(alice, general, body):
    """Nesting too deep to read raised RecursionError, past the readers' ValueError."""
    client = Client(raise_request_exception=False)
    token = post_json(client, "/api/token/", body)
    assert token.status_code == 400 and token.json()["error"] == "bad_request"
    publish = post_json(
        client, "/api/rooms/general/messages/", body, **bearer(token_for(client, "alice"))
    )
    assert publish.status_code == 400 and publish.json()["error"] == "bad_request"


# --- what a bot key may do ---------------------------------------------------------------


@pytest.fixture
def bot_key(general, make_user):
    from chat.domain.bots import bot_account, bot_key_issue

    elsewhere = Room.objects.create(name="Elsewhere", slug="elsewhere")
    send(elsewhere, make_user("dora"), body="not the bot's business")
    _, shown = bot_key_issue(user=bot_account("scorebot"), rooms=[general])
    return shown


def test_a_bot_key_reads_only_its_rooms(bot_key, general):
    """A key acts as its bot only to publish into its rooms and read their history."""
    client = Client()
    assert client.get("/api/rooms/general/messages/", **bearer(bot_key)).status_code == 200
    assert client.get("/api/rooms/elsewhere/messages/", **bearer(bot_key)).status_code == 403
    for path in ("/api/rooms/", "/api/search/?q=business", "/api/rooms/elsewhere/members/"):
        response = client.get(path, **bearer(bot_key))
        assert response.status_code == 403, path
        assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer ", "bearer   "])
def test_a_publish_without_credentials_is_401_with_the_scheme_not_a_csrf_refusal(
    general, authorization
):
    """No Authorization header and no session, or Bearer with no key: who calls is unknown."""
    client = Client(enforce_csrf_checks=True)
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = post_json(client, "/api/rooms/general/messages/", {"body": "hi"}, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="chatsite"'
    assert response.json()["error"] == "unauthenticated"
    assert not general.messages.exists()


def test_a_wrong_key_is_401_with_the_scheme_and_a_session_still_needs_csrf(alice, general):
    client = Client(enforce_csrf_checks=True)
    response = post_json(
        client,
        "/api/rooms/general/messages/",
        {"body": "hi"},
        HTTP_AUTHORIZATION="Bearer chatbot_000000000000_" + "x" * 43,
    )
    assert (response.status_code, response["WWW-Authenticate"]) == (401, 'Bearer realm="chatsite"')
    client.force_login(alice)
    response = post_json(client, "/api/rooms/general/messages/", {"body": "hi"})
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not general.messages.exists()
