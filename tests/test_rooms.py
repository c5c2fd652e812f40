"""Rooms people make and run (chat/actions/membership.py) and their JSON API
(docs/protocol.md, Rooms people make): every refusal is a documented error and
changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from chat.actions import membership as actions
from chat.errors import ChatError
from chat.models import Invite, Membership, Role, Room
from tests.conftest import PASSWORD
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    data = json.dumps(body) if body is not None else ""
    return getattr(client, method)(path, data, content_type="application/json", **extra)


def snapshot() -> tuple[Any, ...]:
    """Everything these calls may change: a refusal must leave it as it was."""
    rooms = list(Room.objects.order_by("pk").values_list("slug", "name", "description", "archived"))
    members = list(Membership.objects.order_by("pk").values_list("room_id", "user_id", "role"))
    invites = list(Invite.objects.order_by("pk").values_list("code", "uses", "revoked"))
    return rooms, members, invites


def refused(client: Client, method: str, path: str, body: Any, status: int, code: str) -> dict:
    before = snapshot()
    response = call(client, method, path, body)
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["error"] == code and answer["detail"]
    assert snapshot() == before
    return answer


@pytest.fixture
def ann(make_user):
    return make_user("ann")


@pytest.fixture
def ben(make_user):
    return make_user("ben")


@pytest.fixture
def team(ann):
    """A private room Ann owns."""
    return actions.room_create(user=ann, name="Team", kind="private", description="ours")


# --- actions --------------------------------------------------------------------------


def test_the_creator_owns_a_new_room_and_the_slug_comes_from_the_name(ann):
    room = actions.room_create(user=ann, name="  Release   Train ", kind="public")
    assert (room.slug, room.name, room.kind) == ("release-train", "Release Train", "public")
    assert Membership.objects.get(room=room).role == Role.OWNER
    again = actions.room_create(user=ann, name="Release train")
    assert again.slug == "release-train-2"
    nothing_latin = actions.room_create(user=ann, name="日本")
    assert nothing_latin.slug == "room"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": ""}, "empty"),
        ({"name": "   "}, "empty"),
        ({"name": "x" * 101}, "too_long"),
        ({"name": 5}, "bad_request"),
        ({"name": "Ok", "kind": "direct"}, "bad_request"),
        ({"name": "Ok", "kind": "broadcast"}, "bad_request"),
        ({"name": "Ok", "slug": "Not A Slug"}, "bad_request"),
        ({"name": "Ok", "slug": "general"}, "conflict"),
        ({"name": "Ok", "description": "d" * 1001}, "too_long"),
    ],
)
def test_bad_rooms_are_refused_and_nothing_is_made(ann, general, fields, code):
    before = snapshot()
    with pytest.raises(ChatError) as refusal:
        actions.room_create(user=ann, **fields)
    assert refusal.value.code == code
    assert snapshot() == before


def test_only_staff_create_rooms_when_the_setting_says_so(ann, settings, make_user):
    settings.CHAT_ROOM_CREATORS = "staff"
    with pytest.raises(ChatError) as refusal:
        actions.room_create(user=ann, name="Mine")
    assert refusal.value.code == "forbidden"
    boss = make_user("boss", is_staff=True)
    assert actions.room_create(user=boss, name="Theirs").slug == "theirs"


def test_owners_run_the_room_and_members_do_not(ann, ben, team):
    actions.member_add(user=ann, room=team, username="ben")
    for change in (
        lambda: actions.room_update(user=ben, room=team, name="Mine now"),
        lambda: actions.member_add(user=ben, room=team, username="ann"),
        lambda: actions.member_role_set(user=ben, room=team, username="ben", role="owner"),
        lambda: actions.member_remove(user=ben, room=team, username="ann"),
        lambda: actions.invite_create(user=ben, room=team),
    ):
        before = snapshot()
        with pytest.raises(ChatError) as refusal:
            change()
        assert refusal.value.code == "forbidden"
        assert snapshot() == before
    room = actions.room_update(user=ann, room=team, name="Team two", description="", archived=True)
    assert (room.name, room.description, room.archived) == ("Team two", "", True)


def test_the_last_owner_stays_until_another_owns_it_or_it_is_archived(ann, ben, team):
    actions.member_add(user=ann, room=team, username="ben")
    for leave in (
        lambda: actions.room_leave(user=ann, room=team),
        lambda: actions.member_role_set(user=ann, room=team, username="ann", role="member"),
    ):
        before = snapshot()
        with pytest.raises(ChatError) as refusal:
            leave()
        assert refusal.value.code == "last_owner"
        assert snapshot() == before
    actions.member_role_set(user=ann, room=team, username="ben", role="owner")
    actions.room_leave(user=ann, room=team)
    assert list(team.memberships.values_list("user__username", "role")) == [("ben", "owner")]
    actions.room_update(user=ben, room=team, archived=True)
    actions.room_leave(user=ben, room=team)
    assert not team.memberships.exists()


def test_adding_twice_or_nobody_is_refused(ann, ben, team, make_user):
    actions.member_add(user=ann, room=team, username="ben")
    make_user("gone", is_active=False)
    for username, code in (
        ("ben", "conflict"),
        ("ann", "conflict"),
        ("nobody", "not_found"),
        ("gone", "not_found"),
    ):
        before = snapshot()
        with pytest.raises(ChatError) as refusal:
            actions.member_add(user=ann, room=team, username=username)
        assert refusal.value.code == code
        assert snapshot() == before


def test_public_rooms_are_joined_private_ones_are_not(ann, ben, team, general):
    actions.room_join(user=ben, room=general)
    assert Membership.objects.get(room=general, user=ben).role == Role.MEMBER
    with pytest.raises(ChatError) as twice:
        actions.room_join(user=ben, room=general)
    assert twice.value.code == "conflict"
    with pytest.raises(ChatError) as private:
        actions.room_join(user=ben, room=team)
    assert private.value.code == "forbidden"


def test_invites_let_people_in_until_they_end(ann, ben, team, make_user):
    invite = actions.invite_create(user=ann, room=team, max_uses=1, expires_in=3600)
    assert len(invite.code) >= 24
    assert actions.invite_accept(user=ben, code=invite.code) == team
    invite.refresh_from_db()
    assert invite.uses == 1
    carol = make_user("carol")
    for code, problem in (
        (invite.code, "invite_invalid"),  # used up
        ("no-such-code", "not_found"),
    ):
        before = snapshot()
        with pytest.raises(ChatError) as refusal:
            actions.invite_accept(user=carol, code=code)
        assert refusal.value.code == problem
        assert snapshot() == before

    expired = actions.invite_create(user=ann, room=team, expires_in=60)
    Invite.objects.filter(pk=expired.pk).update(expires=timezone.now() - timedelta(seconds=1))
    revoked = actions.invite_create(user=ann, room=team)
    actions.invite_revoke(user=ann, room=team, code=revoked.code)
    for code in (expired.code, revoked.code):
        before = snapshot()
        with pytest.raises(ChatError) as refusal:
            actions.invite_accept(user=carol, code=code)
        assert refusal.value.code == "invite_invalid"
        assert "ask an owner for a new link" in refusal.value.detail
        assert snapshot() == before

    fresh = actions.invite_create(user=ann, room=team)
    with pytest.raises(ChatError) as member:
        actions.invite_accept(user=ben, code=fresh.code)
    assert member.value.code == "conflict"
    fresh.refresh_from_db()
    assert fresh.uses == 0


@pytest.mark.parametrize(
    "fields", [{"expires_in": 0}, {"expires_in": "3600"}, {"max_uses": 0}, {"max_uses": True}]
)
def test_invite_numbers_out_of_range_are_refused(ann, team, fields):
    with pytest.raises(ChatError) as refusal:
        actions.invite_create(user=ann, room=team, **fields)
    assert refusal.value.code == "bad_request"
    assert not Invite.objects.exists()


def test_staff_run_every_room(ann, ben, team, make_user):
    boss = make_user("boss", is_staff=True)
    actions.member_add(user=boss, room=team, username="ben")
    actions.member_role_set(user=boss, room=team, username="ben", role="owner")
    actions.member_remove(user=boss, room=team, username="ann")
    assert list(team.memberships.values_list("user__username", "role")) == [("ben", "owner")]


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


# --- the pages -------------------------------------------------------------------------


@pytest.mark.redis
def test_the_lobby_splits_your_rooms_from_the_public_ones(ann, ben, team, general):
    content = logged_in(ben).get("/").content.decode()
    mine, browse = content.split('id="browse-list"')
    assert 'data-slug="general"' in browse and 'action="/rooms/general/join/"' in browse
    assert 'data-slug="team"' not in content
    content = logged_in(ann).get("/").content.decode()
    mine, browse = content.split('id="browse-list"')
    assert 'data-slug="team"' in mine and "badge-owner" in mine


@pytest.mark.redis
def test_the_lobby_form_creates_a_room_and_says_why_not(ann, general):
    client = logged_in(ann)
    response = client.post("/", {"name": "Design", "kind": "private", "description": ""})
    assert response.status_code == 302 and response["Location"] == "/rooms/design/"
    before = snapshot()
    response = client.post("/", {"name": "", "kind": "public"})
    assert response.status_code == 400
    assert "a room needs a name" in response.content.decode()
    assert snapshot() == before


def test_the_invite_page_shows_the_room_and_joins(ann, ben, team):
    invite = actions.invite_create(user=ann, room=team)
    client = logged_in(ben)
    page = client.get(f"/invite/{invite.code}/")
    assert page.status_code == 200 and "Team" in page.content.decode()
    joined = client.post(f"/invite/{invite.code}/")
    assert joined.status_code == 302 and joined["Location"] == "/rooms/team/"
    assert client.get(f"/invite/{invite.code}/")["Location"] == "/rooms/team/"


def test_a_dead_invite_page_says_to_ask_for_a_new_link(ann, ben, team):
    invite = actions.invite_create(user=ann, room=team)
    actions.invite_revoke(user=ann, room=team, code=invite.code)
    for code, status in ((invite.code, 410), ("made-up", 404)):
        page = logged_in(ben).get(f"/invite/{code}/")
        assert page.status_code == status
        content = page.content.decode()
        assert "ask an owner for a new link" in content and "Team" not in content
    assert not team.memberships.filter(user=ben).exists()


def test_a_signed_out_visitor_logs_in_then_comes_back(ann, team):
    invite = actions.invite_create(user=ann, room=team)
    response = Client().get(f"/invite/{invite.code}/")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/invite/{invite.code}/"


def test_the_admin_lists_owners(ann, team, make_user):
    boss = make_user("boss", is_staff=True, is_superuser=True)
    content = logged_in(boss).get("/admin/chat/room/").content.decode()
    assert '<td class="field-owner_names">ann</td>' in content
