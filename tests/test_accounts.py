"""Nobody speaks for the site: bot accounts are marked, never log in, and keep their names."""

from __future__ import annotations

import importlib
import io
import json
import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management import CommandError, call_command
from django.test import Client

from chat.actions.publish import publish
from chat.domain.accounts import username_reserved
from chat.domain.bots import bot_account, bot_key_check, bot_key_issue, bot_key_new, is_bot
from chat.domain.writes import message_delete, message_edit
from chat.errors import ChatError
from chat.models import Bot, BotKey, Message, Room
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a much longer passphrase 42"


@pytest.fixture
def scores(db) -> Room:
    return Room.objects.create(name="Scores", slug="scores", kind=Room.Kind.BROADCAST)


def signup(client: Client, username: str):
    return client.post(
        "/accounts/signup/",
        {"username": username, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["announcements", "Announcements", "ADMIN", "system"])
@pytest.mark.redis
def test_the_publishers_and_reserved_names_are_refused_at_signup(client, username):
    response = signup(client, username)
    assert response.status_code == 200
    assert "reserved for the site" in response.content.decode()
    assert not get_user_model().objects.filter(username__iexact=username).exists()


@pytest.mark.redis
def test_a_bots_name_is_refused_at_signup_in_any_case(client):
    bot_account("scorebot")
    response = signup(client, "ScoreBot")
    assert response.status_code == 200
    assert response.context["form"].errors["username"]
    assert get_user_model().objects.filter(username__iexact="scorebot").count() == 1


def test_reserved_names_come_from_the_settings(settings):
    settings.CHAT_PUBLISHER = "newsroom"
    settings.CHAT_RESERVED_USERNAMES = ["helpdesk"]
    assert username_reserved("NewsRoom") and username_reserved("helpdesk")
    assert not username_reserved("announcements") and not username_reserved("dora")


@pytest.mark.redis
def test_an_ordinary_name_still_signs_up(client):
    assert signup(client, "dora").status_code == 302


# --- a person's account never becomes a bot ------------------------------------------


def test_bot_account_makes_a_marked_account_without_a_password():
    bot = bot_account("newsbot")
    assert is_bot(bot) and not bot.has_usable_password()
    assert bot_account("newsbot") == bot


@pytest.mark.parametrize("taken", ["announcements", "Announcements"])
def test_a_person_holding_the_publishers_name_is_never_its_author(make_user, general, taken):
    """The attack: someone signed up as the publisher before names were reserved."""
    squatter = make_user(taken)
    with pytest.raises(ChatError) as refused:
        publish(general, "Official")
    assert refused.value.code == "forbidden" and "person's account" in refused.value.detail
    assert not Message.objects.exists()
    assert not is_bot(squatter)


def test_publish_as_a_persons_name_is_refused(alice, general):
    with pytest.raises(ChatError):
        publish(general, "hello", author="alice")
    with pytest.raises(CommandError, match="person's account"):
        call_command("chat_publish", "general", "hello", "--as", "alice", stdout=io.StringIO())
    with pytest.raises(CommandError, match="person's account"):
        call_command("chat_bot_key", "Alice", "--room", "general", stdout=io.StringIO())
    assert not Message.objects.exists() and not BotKey.objects.exists()


def test_a_check_warns_when_the_publishers_name_is_a_persons(make_user):
    assert not [m for m in checks.run_checks(databases=["default"]) if m.id == "chat.W002"]
    make_user("announcements")
    [warning] = [m for m in checks.run_checks(databases=["default"]) if m.id == "chat.W002"]
    assert "person's account" in warning.msg


def test_the_migration_marks_old_bots_and_never_people(make_user, general):
    old_bot = get_user_model().objects.create_user("oldbot")  # no password: unusable
    BotKey.objects.create(user=old_bot, prefix="abc", digest="0" * 64)
    publisher = get_user_model().objects.create_user("announcements")
    squatter = make_user("newsdesk")  # a person with a key given by mistake
    BotKey.objects.create(user=squatter, prefix="def", digest="0" * 64)
    passwordless_person = get_user_model().objects.create_user("sso-user")
    Bot.objects.all().delete()
    migration = importlib.import_module("chat.migrations.0009_bot_accounts")
    migration.mark_existing_bots(apps, None)
    assert set(Bot.objects.values_list("user__username", flat=True)) == {
        old_bot.username,
        publisher.username,
    }
    assert not is_bot(squatter) and not is_bot(passwordless_person)


# --- bots never log in ---------------------------------------------------------------


@pytest.mark.redis
def test_a_bot_never_logs_in_even_with_a_password(client):
    bot = bot_account("scorebot")
    bot.set_password(PASSWORD)  # an admin's mistake
    bot.save()
    response = client.post("/accounts/login/", {"username": "scorebot", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    token = Client().post(
        "/api/token/",
        json.dumps({"username": "scorebot", "password": PASSWORD}),
        content_type="application/json",
    )
    assert token.status_code == 401


@pytest.mark.redis
def test_people_still_log_in(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(alice.pk)


# --- keys are for bots alone ---------------------------------------------------------


def test_a_person_gets_no_key_and_an_old_persons_key_does_not_check(alice, general):
    with pytest.raises(ChatError):
        bot_key_issue(user=alice, rooms=[general])
    key = BotKey(user=alice)
    shown = bot_key_new(key)
    key.save()  # made before keys were for bots alone
    key.rooms.add(general)
    assert bot_key_check(shown) is None
    _, bots = bot_key_issue(user=bot_account("scorebot"), rooms=[general])
    assert bot_key_check(bots) is not None


# --- in a broadcast room, only publishers change posts -------------------------------


def test_an_author_without_publish_rights_cannot_edit_or_delete_in_a_broadcast_room(
    make_user, scores
):
    """A person who posted as staff (or took a bot's name) and may not publish now."""
    former_staff = make_user("former", is_staff=True)
    message = publish(scores, "Official", author=former_staff)
    former_staff.is_staff = False
    former_staff.save()
    with pytest.raises(ChatError) as edit:
        message_edit(room_id=scores.pk, number=message.number, user=former_staff, body="a link")
    assert edit.value.code == "forbidden"
    with pytest.raises(ChatError) as delete:
        message_delete(room_id=scores.pk, number=message.number, user=former_staff)
    assert delete.value.code == "forbidden"
    message.refresh_from_db()
    assert (message.body, message.edited, message.deleted_at) == ("Official", False, None)


def test_staff_still_edit_their_posts_in_a_broadcast_room(make_user, scores):
    staff = make_user("editor", is_staff=True)
    message = publish(scores, "Official", author=staff)
    edited = message_edit(room_id=scores.pk, number=message.number, user=staff, body="Fixed")
    assert edited.message.body == "Fixed"


# --- the admin -----------------------------------------------------------------------


@pytest.fixture
def admin_client(db) -> Client:
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    client.force_login(root)
    return client


def test_the_admin_shows_a_new_key_once_in_the_page_and_never_in_a_cookie(admin_client, general):
    bot = bot_account("scorebot")
    response = admin_client.post(
        "/admin/chat/botkey/add/", {"user": bot.pk, "name": "scores", "rooms": [general.pk]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [key] = BotKey.objects.all()
    page = response.content.decode()
    [shown] = re.findall(r'value="([^"]*)" aria-label="The new key"', page)
    assert shown.startswith(f"chatbot_{key.prefix}_") and bot_key_check(shown) == key
    # Django's messages would have carried it in a signed, readable cookie.
    assert "messages" not in response.cookies
    assert shown not in str(response.cookies)
    assert admin_client.get("/admin/chat/botkey/").status_code == 200
    assert shown not in admin_client.get(f"/admin/chat/botkey/{key.pk}/change/").content.decode()


def test_the_admin_refuses_a_key_for_a_persons_account(admin_client, alice, general):
    bot = bot_account("scorebot")
    offered = admin_client.get("/admin/chat/botkey/add/").context["adminform"].form
    assert list(offered.fields["user"].queryset) == [bot]
    response = admin_client.post(
        "/admin/chat/botkey/add/", {"user": alice.pk, "rooms": [general.pk]}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user"]
    assert not BotKey.objects.exists()


def test_the_admin_makes_bots_and_refuses_taken_names(admin_client, alice):
    response = admin_client.post("/admin/chat/bot/add/", {"username": "quotebot"})
    assert response.status_code == 302
    bot = get_user_model().objects.get(username="quotebot")
    assert is_bot(bot) and not bot.has_usable_password()
    taken = admin_client.post("/admin/chat/bot/add/", {"username": "ALICE"})
    assert taken.status_code == 200 and taken.context["adminform"].form.errors["username"]
    assert not is_bot(alice)
