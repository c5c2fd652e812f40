"""Replies, reactions and mentions on the room socket (docs/protocol.md, Conversation)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chat.models import Message, Reaction

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
    pytest.mark.redis,
]


@pytest.fixture
def carol(make_user):
    return make_user("carol")


async def say(socket, body: str, client_id: str, **extra) -> dict:
    await socket.send({"type": "message.send", "body": body, "client_id": client_id, **extra})
    return await socket.receive_type("message")


async def test_a_reply_reaches_everyone_with_its_quote(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await say(a, "Lunch?", "a-1")
    await b.receive_type("message")
    ack = await say(b, "Yes", "b-1", reply_to=1)
    quote = {"id": 1, "user": "alice", "body": "Lunch?", "deleted": False}
    assert ack["reply_to"] == quote
    seen = await a.receive_type("message")
    assert (seen["id"], seen["reply_to"]) == (2, quote)


@pytest.mark.parametrize("reply_to", [5, -1, "1", 1.5, True])
async def test_a_reply_to_nothing_is_bad_request_and_stores_nothing(
    connect, alice, general, reply_to
):
    a, _ = await connect(alice)
    await say(a, "first", "a-1")
    await a.send({"type": "message.send", "body": "x", "client_id": "a-2", "reply_to": reply_to})
    error = await a.receive_type("error")
    assert (error["code"], error["client_id"]) == ("bad_request", "a-2")
    assert await database_sync_to_async(Message.objects.count)() == 1


async def test_a_mention_is_in_the_message_for_everyone(connect, alice, bob, carol, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    ack = await say(a, "@bob and @nobody", "a-1")
    assert ack["mentions"] == ["bob"]
    assert (await b.receive_type("message"))["mentions"] == ["bob"]
    await a.send({"type": "message.edit", "id": 1, "body": "@carol after all"})
    for socket in (a, b):
        edited = await socket.receive_type("message.edited")
        assert (edited["body"], edited["mentions"]) == ("@carol after all", ["carol"])


async def test_reactions_reach_everyone_with_a_version(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await say(a, "ship it?", "a-1")
    await b.receive_type("message")
    await b.send({"type": "reaction.add", "id": 1, "emoji": "👍"})
    for socket in (a, b):
        frame = await socket.receive_type("message.reactions")
        assert frame == {
            "type": "message.reactions",
            "id": 1,
            "reactions": [{"emoji": "👍", "count": 1, "users": ["bob"]}],
            "version": 1,
        }
    # Adding it again changes nothing: the sender alone hears how things stand.
    await b.send({"type": "reaction.add", "id": 1, "emoji": "👍"})
    assert (await b.receive_type("message.reactions"))["version"] == 1
    assert await a.nothing()
    await b.send({"type": "reaction.remove", "id": 1, "emoji": "👍"})
    for socket in (a, b):
        frame = await socket.receive_type("message.reactions")
        assert (frame["reactions"], frame["version"]) == ([], 2)
    # History shows reactions as they stand.
    await a.send({"type": "reaction.add", "id": 1, "emoji": "🎉"})
    await a.receive_type("message.reactions")
    await b.receive_type("message.reactions")
    await a.send({"type": "history"})
    [message] = (await a.receive_type("history"))["messages"]
    assert message["reactions"] == [{"emoji": "🎉", "count": 1, "users": ["alice"]}]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "reaction.add", "id": 1, "emoji": "a"}, "bad_request"),
        ({"type": "reaction.add", "id": 1, "emoji": "👍👍"}, "bad_request"),
        ({"type": "reaction.add", "id": 1}, "bad_request"),
        ({"type": "reaction.add", "emoji": "👍"}, "bad_request"),
        ({"type": "reaction.remove", "id": "1", "emoji": "👍"}, "bad_request"),
        ({"type": "reaction.add", "id": 2, "emoji": "👍"}, "not_found"),
        ({"type": "reaction.add", "id": 3, "emoji": "👍"}, "not_found"),
    ],
)
async def test_bad_reactions_are_refused_and_store_nothing(
    connect, alice, bob, general, frame, code
):
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await say(a, "one", "a-1")
    await say(a, "two", "a-2")
    await a.send({"type": "message.delete", "id": 2})
    await a.receive_type("message.deleted")
    for _ in range(3):
        await b.receive()
    await b.send(frame)
    error = await b.receive_type("error")
    assert error["code"] == code
    assert not await database_sync_to_async(Reaction.objects.exists)()
    assert await a.nothing(0.2)


async def test_reactions_have_a_limit_of_their_own(connect, alice, bob, general, settings):
    settings.CHAT_REACTION_RATE_LIMIT = (2, 10)
    a, _ = await connect(alice)
    await say(a, "one", "a-1")
    for emoji in ("👍", "🎉"):
        await a.send({"type": "reaction.add", "id": 1, "emoji": emoji})
        await a.receive_type("message.reactions")
    await a.send({"type": "reaction.add", "id": 1, "emoji": "😀"})
    error = await a.receive_type("error")
    assert error["code"] == "rate_limited" and error["retry_after"] > 0
    # Messages are counted apart: sending still works.
    assert (await say(a, "two", "a-2"))["id"] == 2
