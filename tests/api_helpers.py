"""What the JSON API's tests (tests/test_api_*.py, test_search_views.py) share: the
contract's keys, tokens, and the shape of an error.
"""

from __future__ import annotations

import json

from django.test import Client

from tests.conftest import PASSWORD

# The contract's keys, and the site's extensions (docs/protocol.md).
MESSAGE_KEYS = {"id", "room", "user", "body", "created", "client_id", "edited"} | {
    "reply_to",
    "reactions",
    "mentions",
    "attachments",
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
