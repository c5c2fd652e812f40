"""Publishing from the server: bot keys, the HTTP endpoint, the commands, chat.actions.publish."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client

from chat.actions.publish import publish
from chat.domain.bots import bot_account, bot_key_check, bot_key_issue, bot_key_revoke
from chat.errors import ChatError
from chat.models import BotKey, Message, Room

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _frames_that_come_at_their_own_pace(monkeypatch) -> None:
    """Presence news and viewer counts are not what these tests are about."""
    from tests.conftest import Socket

    monkeypatch.setattr(Socket, "ignore", frozenset({"presence", "viewers"}))


@pytest.fixture
def scores(db) -> Room:
    return Room.objects.create(name="Scores", slug="scores", kind=Room.Kind.BROADCAST)


@pytest.fixture
def key(scores) -> str:
    _, shown = bot_key_issue(user=bot_account("scorebot"), rooms=[scores])
    return shown


def post(path: str, body: Any, key: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return Client().post(path, json.dumps(body), content_type="application/json", **headers)


def put(path: str, body: str, key: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return Client().put(path, body, content_type="application/json", **headers)


# --- keys -----------------------------------------------------------------------------


def test_the_command_makes_the_bot_and_prints_a_key_once(scores, general):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "chat_bot_key", "newsbot", "--room", "scores", "--room", "general", stdout=out, stderr=err
    )
    shown = out.getvalue().strip()
    assert shown.startswith("chatbot_") and "shown only now" in err.getvalue()
    bot = bot_account("newsbot")
    assert not bot.has_usable_password()
    [stored] = BotKey.objects.filter(user=bot)
    # Only a digest is kept: the key appears nowhere in the database.
    assert shown not in {stored.prefix, stored.digest} and shown.split("_")[2] not in stored.digest
    assert {room.slug for room in stored.rooms.all()} == {"scores", "general"}
    assert bot_key_check(shown) == stored
    with pytest.raises(CommandError, match="no such room: nowhere"):
        call_command("chat_bot_key", "newsbot", "--room", "nowhere", stdout=io.StringIO())


def test_a_person_cannot_be_made_a_bot(alice, scores):
    with pytest.raises(CommandError, match="person's account"):
        call_command("chat_bot_key", "alice", "--room", "scores", stdout=io.StringIO())


def test_wrong_and_revoked_keys_do_not_check(key):
    assert bot_key_check(key) is not None
    prefix = key.split("_")[1]
    for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), "chatbot_x", key + "x", ""):
        assert bot_key_check(wrong) is None
    bot_key_revoke(BotKey.objects.get(prefix=prefix))
    assert bot_key_check(key) is None


# --- the HTTP endpoint ------------------------------------------------------------------


@pytest.mark.redis
def test_a_key_publishes_once_per_client_id(key, scores):
    first = post("/api/rooms/scores/messages/", {"body": "Kick-off!", "client_id": "k-1"}, key)
    assert first.status_code == 201
    message = first.json()
    assert (message["id"], message["user"], message["body"], message["client_id"]) == (
        1,
        "scorebot",
        "Kick-off!",
        "k-1",
    )
    assert set(message) >= {"room", "created", "edited", "reply_to", "reactions", "mentions"}
    again = post("/api/rooms/scores/messages/", {"body": "Kick-off!", "client_id": "k-1"}, key)
    assert (again.status_code, again.json()) == (200, message)
    assert Message.objects.count() == 1
    # A published message is a message: the next one is numbered after it.
    assert post("/api/rooms/scores/messages/", {"body": "1-0"}, key).json()["id"] == 2


@pytest.mark.parametrize(
    ("key_value", "slug", "body", "status", "code"),
    [
        ("wrong", "scores", {"body": "x"}, 401, "unauthenticated"),
        (None, "general", {"body": "x"}, 403, "forbidden"),  # a key for another room
        (None, "nowhere", {"body": "x"}, 404, "not_found"),
        (None, "scores", {"body": "x" * 4001}, 400, "too_long"),
        (None, "scores", {"body": "   "}, 400, "empty"),
        (None, "scores", {"body": 5}, 400, "bad_request"),
        (None, "scores", {"body": "x", "client_id": ""}, 400, "bad_request"),
        (None, "scores", ["not", "an", "object"], 400, "bad_request"),
    ],
)
@pytest.mark.redis
def test_bad_publishes_are_refused_with_the_sockets_codes(
    key, general, key_value, slug, body, status, code
):
    response = post(f"/api/rooms/{slug}/messages/", body, key if key_value is None else key_value)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert not Message.objects.exists()


def test_a_revoked_key_is_401(key):
    bot_key_revoke(BotKey.objects.get())
    response = post("/api/rooms/scores/messages/", {"body": "x"}, key)
    assert response.status_code == 401


@pytest.mark.redis
def test_a_publish_flood_is_429_with_retry_after(key, settings):
    settings.CHAT_PUBLISH_RATE_LIMIT = (2, 60)

    def publish_as_bot(client_id: str) -> Any:
        return post("/api/rooms/scores/messages/", {"body": client_id, "client_id": client_id}, key)

    assert publish_as_bot("c0").status_code == 201
    assert publish_as_bot("c0").status_code == 200  # a repeat stores nothing: not counted
    assert publish_as_bot("c1").status_code == 201
    refused = publish_as_bot("c2")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited" and refused.json()["retry_after"] > 0
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert list(Message.objects.values_list("body", flat=True)) == ["c0", "c1"]


def test_a_session_post_needs_its_csrf_token(alice, general):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    refused = client.post(
        "/api/rooms/general/messages/", json.dumps({"body": "hi"}), content_type="application/json"
    )
    assert refused.status_code == 403 and not Message.objects.exists()


# --- chat.actions.publish and the command ------------------------------------------------------


@pytest.mark.redis
async def test_publish_broadcasts_once_the_transaction_commits(connect, alice, general):
    socket, _ = await connect(alice)

    @database_sync_to_async
    def in_a_transaction(fail: bool) -> None:
        with transaction.atomic():
            publish("general", "from a task")
            assert Message.objects.filter(body="from a task").exists()
            if fail:
                raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await in_a_transaction(True)
    assert await socket.nothing(0.3)
    assert not await database_sync_to_async(Message.objects.exists)()
    await in_a_transaction(False)
    frame = await socket.receive_type("message")
    assert (frame["id"], frame["user"], frame["body"]) == (1, "announcements", "from a task")


def test_the_publish_command(general):
    out = io.StringIO()
    call_command(
        "chat_publish", "general", "Maintenance at 18:00", "--client-id", "m-1", stdout=out
    )
    call_command(
        "chat_publish", "general", "Maintenance at 18:00", "--client-id", "m-1", stdout=out
    )
    assert out.getvalue().splitlines() == ["general#1 by announcements"] * 2
    assert list(Message.objects.values_list("body", flat=True)) == ["Maintenance at 18:00"]
    with pytest.raises(CommandError, match="no such room"):
        call_command("chat_publish", "nowhere", "x", stdout=io.StringIO())
    with pytest.raises(CommandError, match="empty"):
        call_command("chat_publish", "general", "  ", stdout=io.StringIO())


def test_publish_refuses_what_message_send_refuses(general):
    Room.objects.filter(pk=general.pk).update(archived=True)
    with pytest.raises(ChatError) as refused:
        publish("general", "late")
    assert refused.value.code == "room_archived"


# --- broadcast rooms: who posts, who watches, the state ----------------------------------


@pytest.mark.redis
async def test_only_publishers_post_in_a_broadcast_room(connect, alice, make_user, scores):
    viewer, welcome = await connect(alice, "scores")
    assert (welcome["online"], welcome["viewers"], welcome["state"]) == ([], 1, None)
    await viewer.send({"type": "message.send", "body": "me too", "client_id": "v-1"})
    error = await viewer.receive_type("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "v-1")
    staff = await database_sync_to_async(make_user)("editor", is_staff=True)
    editor, _ = await connect(staff, "scores")
    await editor.send({"type": "message.send", "body": "Half time", "client_id": "e-1"})
    assert (await editor.receive_type("message"))["id"] == 1
    frame = await viewer.receive_type("messages")
    assert [(m["id"], m["body"]) for m in frame["messages"]] == [(1, "Half time")]
    assert await database_sync_to_async(Message.objects.count)() == 1


@pytest.mark.redis
async def test_anonymous_viewers_watch_an_open_broadcast_room_and_never_post(scores, general):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application
    from tests.conftest import Socket, with_host

    async def anonymous(slug: str) -> Socket:
        communicator = WebsocketCommunicator(
            application,
            f"/ws/rooms/{slug}/",
            headers=with_host([(b"origin", b"http://localhost")]),
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        return Socket(communicator)

    closed = await anonymous("scores")  # not open to viewers yet
    assert await closed.closed_with() == 4401
    await closed.close()
    assert await (await anonymous("general")).closed_with() == 4401

    await database_sync_to_async(Room.objects.filter(pk=scores.pk).update)(public_viewing=True)
    await database_sync_to_async(publish)("scores", "Welcome, viewers")
    viewer = await anonymous("scores")
    welcome = await viewer.receive_type("welcome")
    assert (welcome["user"], welcome["last_id"], welcome["room"]["kind"]) == (None, 1, "broadcast")
    for frame in (
        {"type": "message.send", "body": "hi", "client_id": "a-1"},
        {"type": "comment.send", "body": "hi"},
        {"type": "read", "id": 1},
    ):
        await viewer.send(frame)
        error = await viewer.receive_type("error")
        assert error["code"] == "forbidden"
    await viewer.send({"type": "history"})
    assert [m["body"] for m in (await viewer.receive_type("history"))["messages"]] == [
        "Welcome, viewers"
    ]
    assert await database_sync_to_async(Message.objects.count)() == 1
    await viewer.close()


@pytest.mark.redis
async def test_the_state_is_in_the_welcome_and_live(connect, alice, bob, key, scores):
    watcher, welcome = await connect(alice, "scores")
    assert (welcome["state"], welcome["state_version"]) == (None, 0)
    response = await sync_to_async(put)(
        "/api/rooms/scores/state/", json.dumps({"home": 1, "away": 0}), key
    )
    assert response.status_code == 200
    assert response.json() == {"slug": "scores", "state": {"home": 1, "away": 0}, "version": 1}
    live = await watcher.receive_type("room.state")
    assert live == {"type": "room.state", "state": {"home": 1, "away": 0}, "version": 1}
    # A late joiner sees the score at once.
    _, late = await connect(bob, "scores")
    assert (late["state"], late["state_version"]) == ({"home": 1, "away": 0}, 1)


@pytest.mark.parametrize(
    ("slug", "body", "status"),
    [
        ("scores", "{not json", 400),
        ("scores", json.dumps({"x": "y" * (16 * 1024)}), 400),
        ("general", json.dumps({"a": 1}), 403),  # the key is not for it
    ],
)
def test_bad_states_are_refused(key, general, slug, body, status):
    assert put(f"/api/rooms/{slug}/state/", body, key).status_code == status
    assert Room.objects.get(slug="scores").state_version == 0


def test_only_staff_set_a_state_without_a_key(alice, make_user, scores, general):
    def put_as(user, slug: str) -> int:
        client = Client()
        client.force_login(user)
        return client.put(
            f"/api/rooms/{slug}/state/", json.dumps(1), content_type="application/json"
        ).status_code

    assert put_as(alice, "scores") == 403
    editor = make_user("editor", is_staff=True)
    assert put_as(editor, "scores") == 200
    assert put_as(editor, "general") == 400  # only a broadcast room has a state


# --- live comments -------------------------------------------------------------------------


@pytest.mark.redis
async def test_live_comments_reach_everyone_and_are_never_stored(connect, alice, bob, general):
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(live_comments=True)
    a, welcome = await connect(alice)
    assert welcome["room"]["live_comments"] is True
    b, _ = await connect(bob)
    await a.send({"type": "comment.send", "body": "  what a goal  ", "time": 61.5})
    for socket in (a, b):
        assert await socket.receive_type("comment") == {
            "type": "comment",
            "user": "alice",
            "body": "what a goal",
            "time": 61.5,
        }
    assert not await database_sync_to_async(Message.objects.exists)()
    await b.send({"type": "message.send", "body": "a message", "client_id": "b-1"})
    assert (await b.receive_type("message"))["id"] == 1  # comments take no id


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "comment.send", "body": ""}, "empty"),
        ({"type": "comment.send", "body": "x" * 201}, "too_long"),
        ({"type": "comment.send", "body": "x", "time": -1}, "bad_request"),
        ({"type": "comment.send", "body": "x", "time": "1"}, "bad_request"),
        ({"type": "comment.send"}, "bad_request"),
    ],
)
@pytest.mark.redis
async def test_bad_comments_are_refused(connect, alice, general, frame, code):
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(live_comments=True)
    a, _ = await connect(alice)
    await a.send(frame)
    assert (await a.receive_type("error"))["code"] == code


@pytest.mark.redis
async def test_comments_need_a_room_that_takes_them_and_have_a_limit(
    connect, alice, general, settings
):
    a, _ = await connect(alice)
    await a.send({"type": "comment.send", "body": "hello"})
    assert (await a.receive_type("error"))["code"] == "forbidden"
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(live_comments=True)
    settings.CHAT_COMMENT_RATE_LIMIT = (1, 60)
    a, _ = await connect(alice)
    await a.send({"type": "comment.send", "body": "one"})
    await a.receive_type("comment")
    await a.send({"type": "comment.send", "body": "two"})
    assert (await a.receive_type("error"))["code"] == "rate_limited"


# --- a tick of messages, one frame -----------------------------------------------------------


@pytest.mark.redis
async def test_a_broadcast_rooms_messages_come_a_tick_at_a_time(
    connect, alice, bob, scores, settings
):
    settings.CHAT_BATCH_TICK = 0.5
    viewers = [(await connect(user, "scores"))[0] for user in (alice, bob)]
    # The first finds the room quiet and goes at once; the rest wait out the tick.
    for n in range(4):
        await database_sync_to_async(publish)("scores", f"update {n}")
    for viewer in viewers:
        frames = [await viewer.receive_type("messages") for _ in range(2)]
        assert [[(m["type"], m["id"], m["body"]) for m in f["messages"]] for f in frames] == [
            [("message", 1, "update 0")],
            [("message", 2, "update 1"), ("message", 3, "update 2"), ("message", 4, "update 3")],
        ]
    assert all([await viewer.nothing(0.6) for viewer in viewers])
