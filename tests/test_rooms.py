"""Rooms people make and run (chat/actions/membership.py), and their pages: every
refusal is a documented error and changes nothing. The JSON API is in
test_rooms_api.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chat.actions import membership as actions
from chat.errors import ChatError
from chat.models import Invite, Membership, Role
from tests.helpers import logged_in
from tests.rooms_helpers import ann as ann  # a fixture
from tests.rooms_helpers import ben as ben  # a fixture
from tests.rooms_helpers import snapshot
from tests.rooms_helpers import team as team  # a fixture

pytestmark = pytest.mark.django_db


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
