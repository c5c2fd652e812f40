"""The JSON API of rooms people make (docs/protocol.md, Rooms people make): creating,
changing, members and roles, leaving and invites; every refusal is a documented
error and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from chat.actions import membership as actions
from tests.conftest import PASSWORD
from tests.helpers import logged_in
from tests.rooms_helpers import ann as ann  # a fixture
from tests.rooms_helpers import ben as ben  # a fixture
from tests.rooms_helpers import snapshot
from tests.rooms_helpers import team as team  # a fixture

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    data = json.dumps(body) if body is not None else ""
    return getattr(client, method)(path, data, content_type="application/json", **extra)


def refused(client: Client, method: str, path: str, body: Any, status: int, code: str) -> dict:
    before = snapshot()
    response = call(client, method, path, body)
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["error"] == code and answer["detail"]
    assert snapshot() == before
    return answer


# --- the JSON API ---------------------------------------------------------------------


@pytest.mark.redis
def test_api_creates_a_room_and_shows_the_callers_role(ann, ben):
    client = logged_in(ann)
    response = call(client, "post", "/api/rooms/", {"name": "Ops", "kind": "private"})
    assert response.status_code == 201, response.content
    room = response.json()
    assert (room["slug"], room["kind"], room["role"]) == ("ops", "private", "owner")
    given = call(client, "post", "/api/rooms/", {"name": "Ops two", "slug": "ops-2"})
    assert given.json()["slug"] == "ops-2"
    listed = {entry["slug"]: entry["role"] for entry in client.get("/api/rooms/").json()["rooms"]}
    assert listed["ops"] == "owner" and listed["general"] is None
    assert "ops" not in {
        entry["slug"] for entry in logged_in(ben).get("/api/rooms/").json()["rooms"]
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": ""}, 400, "empty"),
        ({}, 400, "empty"),
        ({"name": "x" * 101}, 400, "too_long"),
        ({"name": "Ok", "slug": "general"}, 409, "conflict"),
        ({"name": "Ok", "kind": "secret"}, 400, "bad_request"),
    ],
)
def test_api_refuses_bad_rooms(ann, general, body, status, code):
    refused(logged_in(ann), "post", "/api/rooms/", body, status, code)


@pytest.mark.redis
def test_api_room_changes_for_owners_only(ann, ben, team):
    actions.member_add(user=ann, room=team, username="ben")
    refused(logged_in(ben), "patch", "/api/rooms/team/", {"name": "Ben's"}, 403, "forbidden")
    refused(logged_in(ann), "patch", "/api/rooms/team/", {"nam": "typo"}, 400, "bad_request")
    refused(logged_in(ann), "patch", "/api/rooms/team/", {"archived": "yes"}, 400, "bad_request")
    response = call(logged_in(ann), "patch", "/api/rooms/team/", {"name": "Crew", "archived": True})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["archived"]) == ("Crew", True)
    # A stranger: the private room does not exist for them.
    carol_client = logged_in(type(ann).objects.create_user("carol", password="x-Pass-2026"))
    refused(carol_client, "patch", "/api/rooms/team/", {"name": "x"}, 404, "not_found")


@pytest.mark.redis
def test_api_members_and_roles(ann, ben, team, make_user):
    client = logged_in(ann)
    added = call(client, "post", "/api/rooms/team/members/", {"username": "ben"})
    assert added.status_code == 201
    assert added.json() == {"username": "ben", "role": "member"}
    refused(client, "post", "/api/rooms/team/members/", {"username": "ben"}, 409, "conflict")
    refused(client, "post", "/api/rooms/team/members/", {"username": "ann"}, 409, "conflict")
    refused(client, "post", "/api/rooms/team/members/", {"username": "zed"}, 404, "not_found")
    refused(
        logged_in(ben), "post", "/api/rooms/team/members/", {"username": "ann"}, 403, "forbidden"
    )
    refused(client, "patch", "/api/rooms/team/members/ben/", {"role": "boss"}, 400, "bad_request")
    refused(client, "delete", "/api/rooms/team/members/ann/", None, 409, "last_owner")
    refused(logged_in(ben), "delete", "/api/rooms/team/members/ann/", None, 403, "forbidden")
    made = call(client, "patch", "/api/rooms/team/members/ben/", {"role": "owner"})
    assert made.json() == {"username": "ben", "role": "owner"}
    detail = client.get("/api/rooms/team/").json()
    assert detail["members"] == [
        {"username": "ann", "role": "owner"},
        {"username": "ben", "role": "owner"},
    ]
    assert call(client, "delete", "/api/rooms/team/members/ann/").status_code == 204
    assert list(team.memberships.values_list("user__username", flat=True)) == ["ben"]


@pytest.mark.redis
def test_api_leaving_is_anyones_own_delete(ann, ben, general):
    client = logged_in(ben)
    joined = call(client, "post", "/api/rooms/general/join/")
    assert joined.status_code == 200 and joined.json()["role"] == "member"
    refused(client, "post", "/api/rooms/general/join/", None, 409, "conflict")
    assert call(client, "delete", "/api/rooms/general/members/ben/").status_code == 204
    assert client.get("/api/rooms/").json()["rooms"][0]["role"] is None
    refused(client, "delete", "/api/rooms/general/members/ben/", None, 404, "not_found")


@pytest.mark.redis
def test_api_invites(ann, ben, team, make_user):
    client = logged_in(ann)
    response = call(client, "post", "/api/rooms/team/invites/", {"expires_in": 3600, "max_uses": 2})
    assert response.status_code == 201
    invite = response.json()
    assert set(invite) == {"code", "url", "expires", "max_uses"}
    assert invite["url"].endswith(f"/invite/{invite['code']}/") and invite["max_uses"] == 2
    assert invite["expires"].endswith("Z")
    refused(logged_in(ben), "post", "/api/rooms/team/invites/", {}, 404, "not_found")
    refused(client, "post", "/api/rooms/team/invites/", {"max_uses": -1}, 400, "bad_request")
    accepted = call(logged_in(ben), "post", f"/api/invites/{invite['code']}/accept/")
    assert accepted.status_code == 200
    assert (accepted.json()["slug"], accepted.json()["role"]) == ("team", "member")
    refused(logged_in(ben), "post", f"/api/invites/{invite['code']}/accept/", None, 409, "conflict")
    refused(
        logged_in(ben),
        "delete",
        f"/api/rooms/team/invites/{invite['code']}/",
        None,
        403,
        "forbidden",
    )
    assert call(client, "delete", f"/api/rooms/team/invites/{invite['code']}/").status_code == 204
    carol = logged_in(make_user("carol"))
    answer = refused(
        carol, "post", f"/api/invites/{invite['code']}/accept/", None, 410, "invite_invalid"
    )
    assert "revoked" in answer["detail"]
    refused(carol, "post", "/api/invites/nothing/accept/", None, 404, "not_found")
    refused(client, "delete", "/api/rooms/team/invites/nothing/", None, 404, "not_found")


def test_api_needs_a_login_and_csrf_for_a_session(ann, team):
    anonymous = Client()
    response = call(anonymous, "post", "/api/rooms/", {"name": "x"})
    assert response.status_code == 401 and response.json()["error"] == "unauthenticated"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ann)
    before = snapshot()
    response = call(strict, "post", "/api/rooms/", {"name": "x"})
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert snapshot() == before


@pytest.mark.redis
def test_a_token_creates_rooms_too(ann, client):
    token = call(client, "post", "/api/token/", {"username": "ann", "password": PASSWORD})
    assert token.status_code == 200, token.content
    response = call(
        Client(),
        "post",
        "/api/rooms/",
        {"name": "By token"},
        HTTP_AUTHORIZATION=f"Bearer {token.json()['token']}",
    )
    assert response.status_code == 201 and response.json()["role"] == "owner"
