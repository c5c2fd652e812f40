"""Log-in, sign-up and token throttling, shared through the real Redis."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from chat.platform.redis.pools import sync_client
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def tight(settings):
    settings.CHAT_LOGIN_LIMIT = (3, 60)
    settings.CHAT_SIGNUP_LIMIT = (2, 60)


@pytest.fixture(autouse=True)
def _forget_attempts(settings):
    client = sync_client(0)  # the real Redis, whatever a test points the settings at
    yield
    keys = list(client.scan_iter(f"{settings.CHAT_LAYER_PREFIX}:throttle:*"))
    if keys:
        client.delete(*keys)


def log_in(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def token(username: str, password: str, address: str = "10.0.0.1"):
    return Client().post(
        "/api/token/",
        json.dumps({"username": username, "password": password}),
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def test_failed_log_ins_beyond_the_limit_are_refused_before_the_password_check(
    tight, make_user, django_assert_num_queries
):
    make_user("alice")
    for _ in range(3):
        assert log_in(Client(), "alice", "wrong").status_code == 200
    # Even the right password waits: the guesser cannot tell it was right.
    with django_assert_num_queries(0):
        response = log_in(Client(), "alice", PASSWORD)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert b"Too many attempts. Try again in" in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_the_username_budget_holds_from_every_address_and_any_case(tight, make_user):
    make_user("alice")
    for number in range(3):
        log_in(Client(), "Alice" if number else "alice", "wrong", address=f"10.0.0.{number}")
    assert log_in(Client(), " ALICE ", "wrong", address="10.9.9.9").status_code == 429
    # Other users are not affected.
    make_user("bob")
    assert log_in(Client(), "bob", PASSWORD).status_code == 302


def test_one_address_guessing_many_usernames_is_stopped(tight, make_user):
    make_user("alice")
    for number in range(30):  # tenfold the per-username limit
        assert log_in(Client(), f"nobody{number}", "wrong").status_code == 200
    assert log_in(Client(), "alice", PASSWORD).status_code == 429
    assert log_in(Client(), "alice", PASSWORD, address="10.0.0.2").status_code == 302


def test_successful_log_ins_do_not_count(tight, make_user):
    make_user("alice")
    for _ in range(5):
        assert log_in(Client(), "alice", PASSWORD).status_code == 302


def test_the_token_endpoint_shares_the_log_in_budget(tight, make_user):
    make_user("alice")
    assert token("alice", "wrong").status_code == 401
    assert log_in(Client(), "alice", "wrong").status_code == 200
    assert token("alice", "wrong").status_code == 401
    response = token("alice", PASSWORD)
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "rate_limited"
    assert 0 < body["retry_after"] <= 60
    assert int(response["Retry-After"]) == int(body["retry_after"])


def test_sign_ups_per_address_are_limited(tight):
    for number in range(2):
        response = Client().post(
            "/accounts/signup/",
            {"username": f"new{number}", "password1": PASSWORD, "password2": PASSWORD},
            REMOTE_ADDR="10.0.0.7",
        )
        assert response.status_code == 302
    response = Client().post(
        "/accounts/signup/",
        {"username": "new2", "password1": PASSWORD, "password2": PASSWORD},
        REMOTE_ADDR="10.0.0.7",
    )
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="new2").exists()


def test_a_redis_outage_lets_log_ins_through(tight, make_user, settings, monkeypatch):
    """The password check still stands; the site stays usable while Redis restarts."""
    make_user("alice")
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["hosts"][0]["address"] = "redis://127.0.0.1:1/0"
    settings.CHANNEL_LAYERS = layers  # a Redis nobody answers at
    assert log_in(Client(), "alice", "wrong").status_code == 200
    assert log_in(Client(), "alice", PASSWORD).status_code == 302
