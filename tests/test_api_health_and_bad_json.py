"""The JSON API's edges: /healthz against the real services and a dead channel layer,
and JSON too deep or not strict, refused with 400, never a 500.
"""

from __future__ import annotations

import json
import time

import pytest
from channels.layers import channel_layers
from django.test import Client

from tests.api_helpers import bearer, post_json, token_for
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


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
