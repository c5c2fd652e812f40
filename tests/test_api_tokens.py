"""The JSON API's tokens: /api/token/ with credentials or a session, bearer tokens on
the API and what voids them, and what a bot key may do.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.core import signing
from django.test import Client

from chat.models import Room
from tests.api_helpers import assert_json_error, bearer, post_json, token_for
from tests.conftest import PASSWORD
from tests.helpers import send

pytestmark = pytest.mark.django_db


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
