"""The page's own socket, /ws/me/: live counts of every room, new rooms, notifications."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from chat.domain import events
from chat.domain.direct import direct_room_open
from chat.domain.writes import message_create
from chat.models import Room
from chat.web.tokens import token_issue
from tests.conftest import Socket
from tests.helpers import logged_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


@pytest.fixture
async def me() -> AsyncIterator[Callable[..., Any]]:
    """Open a user's /ws/me/ socket; (socket, its first frame)."""
    from chatsite.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def open_me(user) -> tuple[Socket, dict[str, Any]]:
        token = await sync_to_async(token_issue)(user=user)
        communicator = WebsocketCommunicator(application, f"/ws/me/?token={token}")
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        socket = Socket(communicator)
        return socket, await socket.receive_type("rooms")

    yield open_me
    for communicator in opened:
        if not communicator.future.cancelled():
            await communicator.disconnect()


@pytest.fixture
def carol(make_user):
    return make_user("carol")


def by_slug(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {room["slug"]: room for room in frame["rooms"]}


async def room_update(socket: Socket, slug: str) -> dict[str, Any]:
    """The next `room` frame, which must be about `slug`."""
    frame = await socket.receive_type("room")
    assert frame["room"]["slug"] == slug, frame
    return frame["room"]


async def room_reaching(socket: Socket, slug: str, **wanted: Any) -> dict[str, Any]:
    """`room` frames about `slug` until one has the `wanted` values (others in between
    are news of who came online, or of the room itself)."""
    while True:
        room = await room_update(socket, slug)
        if all(room[key] == value for key, value in wanted.items()):
            return room


async def say(socket: Socket, body: str) -> dict[str, Any]:
    await socket.send({"type": "message.send", "body": body})
    return await socket.receive_type("message")


@pytest.mark.redis
async def test_the_snapshot_lists_every_room_the_user_sees(me, connect, alice, bob, general):
    private = await database_sync_to_async(Room.objects.create)(
        name="Hidden", slug="hidden", kind=Room.Kind.PRIVATE
    )
    await database_sync_to_async(message_create)(
        room_id=general.pk, author=bob, body="@alice hi", client_id=None
    )
    await connect(bob)  # online in general
    _, rooms = await me(alice)
    rooms = by_slug(rooms)
    assert private.slug not in rooms
    assert rooms["general"] == {
        "slug": "general",
        "name": "General",
        "description": general.description,
        "kind": "public",
        "archived": False,
        "online": 1,
        "unread": 1,
        "mentions": 1,
        "notify": "mentions",
        "role": None,
    }


@pytest.mark.redis
async def test_messages_count_live_and_a_mention_notifies(me, connect, alice, bob, general):
    m, _ = await me(alice)
    b, _ = await connect(bob)
    assert (await room_update(m, "general"))["online"] == 1  # bob came online
    await say(b, "hello")
    assert (await room_update(m, "general"))["unread"] == 1
    assert await m.nothing(0.2)  # the default for a room: mentions only
    await say(b, "@alice look")
    counts = await room_update(m, "general")
    assert (counts["unread"], counts["mentions"]) == (2, 1)
    notify = await m.receive_type("notify")
    assert notify == {
        "type": "notify",
        "room": "general",
        "title": "General",
        "kind": "public",
        "id": 2,
        "user": "bob",
        "body": "@alice look",
        "mention": True,
    }
    # Reading in the room (on any socket of hers) brings the counts down.
    a, _ = await connect(alice)
    await a.send({"type": "read", "id": 2})
    await room_reaching(m, "general", unread=0, mentions=0)


@pytest.mark.redis
async def test_own_messages_count_for_nothing(me, connect, alice, general):
    m, _ = await me(alice)
    a, _ = await connect(alice)
    await room_update(m, "general")  # alice herself came online
    await say(a, "mine")
    assert await m.nothing(0.3)


@pytest.mark.redis
async def test_a_deleted_message_is_uncounted(me, connect, alice, bob, general):
    m, _ = await me(alice)
    b, _ = await connect(bob)
    await room_update(m, "general")
    await say(b, "@alice oops")
    await room_update(m, "general")
    await m.receive_type("notify")
    await b.send({"type": "message.delete", "id": 1})
    counts = await room_update(m, "general")
    assert (counts["unread"], counts["mentions"]) == (0, 0)


@pytest.mark.redis
async def test_a_new_direct_conversation_appears_and_notifies_every_message(
    me, connect, alice, bob
):
    m, _ = await me(alice)
    room = await database_sync_to_async(direct_room_open)(user=bob, username="alice")
    added = await room_update(m, room.slug)
    assert (added["kind"], added["name"], added["notify"]) == ("direct", "bob", "all")
    b, _ = await connect(bob, room.slug)
    await room_reaching(m, room.slug, online=1)
    await say(b, "psst")
    await room_reaching(m, room.slug, unread=1)
    notify = await m.receive_type("notify")
    assert (notify["room"], notify["body"], notify["mention"]) == (room.slug, "psst", False)


@pytest.mark.redis
async def test_losing_a_room_removes_it(me, alice, bob):
    room = await database_sync_to_async(Room.objects.create)(
        name="Team", slug="team", kind=Room.Kind.PRIVATE
    )
    await database_sync_to_async(room.members.add)(alice, bob)
    m, rooms = await me(alice)
    assert "team" in by_slug(rooms)
    await database_sync_to_async(room.members.remove)(alice)
    assert await m.receive_type("room.removed") == {"type": "room.removed", "slug": "team"}


@pytest.mark.redis
async def test_a_new_public_room_appears(me, alice):
    m, rooms = await me(alice)
    assert "lounge" not in by_slug(rooms)
    await database_sync_to_async(Room.objects.create)(name="Lounge", slug="lounge")
    assert (await room_update(m, "lounge"))["unread"] == 0


@pytest.mark.redis
async def test_the_notification_setting_is_saved_and_followed(me, connect, alice, bob, general):
    m, _ = await me(alice)
    b, _ = await connect(bob)
    await room_update(m, "general")
    client = await sync_to_async(logged_in)(alice)
    response = await sync_to_async(client.put)(
        "/api/rooms/general/notify/", json.dumps({"notify": "all"}), content_type="application/json"
    )
    assert response.status_code == 200 and response.json() == {"slug": "general", "notify": "all"}
    assert (await room_update(m, "general"))["notify"] == "all"
    await say(b, "no mention")
    await room_update(m, "general")
    assert (await m.receive_type("notify"))["body"] == "no mention"
    bad = await sync_to_async(client.put)(
        "/api/rooms/general/notify/",
        json.dumps({"notify": "loud"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


@pytest.mark.redis
async def test_a_message_the_socket_missed_is_counted_exactly(me, alice, bob, general):
    """A broadcast lost on its way shows as a jump in ids: the missing one is read and counted."""
    m, _ = await me(alice)
    await database_sync_to_async(message_create)(
        room_id=general.pk, author=bob, body="never broadcast", client_id=None
    )
    two, _ = await database_sync_to_async(message_create)(
        room_id=general.pk, author=bob, body="broadcast", client_id=None
    )
    await get_channel_layer().group_send(general.group_name, events.chat_message(two))
    assert (await room_update(m, "general"))["unread"] == 2


async def test_the_page_socket_needs_a_user(connect):
    from chatsite.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/me/?token=bogus")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await Socket(communicator).closed_with() == 4401
    await communicator.disconnect()


@pytest.mark.redis
async def test_an_owner_removing_a_member_closes_their_room_and_drops_it_live(
    me, connect, alice, bob
):
    """Through the action, as through the admin: the room socket closes with 4404 and
    the person's page drops the room, on any worker."""
    from chat.actions import membership

    room = await database_sync_to_async(membership.room_create)(
        user=alice, name="Team", kind="private"
    )
    await database_sync_to_async(membership.member_add)(user=alice, room=room, username="bob")
    m, rooms = await me(bob)
    assert by_slug(rooms)["team"]["role"] == "member"
    sock, _ = await connect(bob, "team")
    await database_sync_to_async(membership.member_remove)(user=alice, room=room, username="bob")
    assert await sock.closed_with() == 4404
    frame = await m.receive()
    while frame["type"] == "room":  # news of who is online in it, before the removal
        frame = await m.receive()
    assert frame == {"type": "room.removed", "slug": "team"}


@pytest.mark.redis
async def test_joining_and_roles_reach_the_persons_pages(me, alice, bob, general):
    from chat.actions import membership

    m, rooms = await me(bob)
    assert by_slug(rooms)["general"]["role"] is None
    await database_sync_to_async(membership.room_join)(user=bob, room=general)
    await room_reaching(m, "general", role="member")
    room = await database_sync_to_async(membership.room_create)(
        user=alice, name="Team", kind="private"
    )
    await database_sync_to_async(membership.member_add)(user=alice, room=room, username="bob")
    await room_reaching(m, "team", role="member")
    await database_sync_to_async(membership.member_role_set)(
        user=alice, room=room, username="bob", role="owner"
    )
    await room_reaching(m, "team", role="owner")
    await database_sync_to_async(membership.room_leave)(user=bob, room=general)
    await room_reaching(m, "general", role=None)
