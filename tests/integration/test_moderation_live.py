"""Moderation across workers: changes made in another process reach every worker's sockets."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import uuid

import pytest
import websockets

from tests.integration.conftest import PASSWORD, Client, manage

pytestmark = pytest.mark.integration


def shell(cluster, code: str) -> str:
    """Run Django code in a process of its own (as a moderator's shell or admin would)."""
    return manage(cluster.workers[0].env, "shell", "-c", code)


async def closed_with(client: Client, timeout: float = 5) -> int:
    """Read until the server closes; the close code."""
    deadline = time.monotonic() + timeout
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(client.connection.recv(), max(0.01, deadline - time.monotonic()))
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@pytest.fixture
def newcomer(cluster) -> str:
    """A user of this test alone (the shared ones stay active)."""
    name = f"mod-{uuid.uuid4().hex[:8]}"
    shell(
        cluster,
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.create_user({name!r}, password={PASSWORD!r})",
    )
    return name


async def test_deactivation_closes_sockets_on_every_worker_within_2_s(cluster, room, newcomer):
    token = await asyncio.to_thread(cluster.token, newcomer)
    on_first = await cluster.connect(newcomer, 0, room)
    on_second = await cluster.connect(newcomer, 1, room)
    watcher = await cluster.connect("user00", 1, room)
    output = shell(
        cluster,
        "import time\n"
        "from django.contrib.auth import get_user_model\n"
        f"user = get_user_model().objects.get(username={newcomer!r})\n"
        "user.is_active = False\n"
        "user.save()\n"
        "print(time.time())\n",
    )
    committed = float(output.strip().splitlines()[-1])
    codes = await asyncio.gather(closed_with(on_first), closed_with(on_second))
    assert codes == [4403, 4403]
    assert time.time() - committed < 2
    # New sockets are refused, with a token from before (4403) and no new token.
    for worker in (0, 1):
        url = cluster.workers[worker].url.replace("http", "ws", 1)
        async with websockets.connect(f"{url}/ws/rooms/{room}/?token={token}") as refused:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(refused.recv(), 5)
            assert closed.value.rcvd.code == 4403
    with pytest.raises(urllib.error.HTTPError) as error:
        await asyncio.to_thread(cluster.token, newcomer)
    assert error.value.code == 401
    # The others carry on.
    await watcher.send({"type": "ping"})
    assert (await watcher.receive_type("pong"))["type"] == "pong"


async def test_moderation_in_the_admin_reaches_pages_on_every_worker(cluster, room, newcomer):
    author = await cluster.connect(newcomer, 0, room)
    readers = [await cluster.connect("user01", 0, room), await cluster.connect("user02", 1, room)]
    await author.send({"type": "message.send", "body": "spam", "client_id": "s1"})
    sent = await author.receive_type("message")
    for reader in readers:
        assert (await reader.receive_type("message"))["id"] == sent["id"]

    # A moderator deletes it in the admin (the admin's own code, in its own process).
    shell(
        cluster,
        "from django.contrib.admin.sites import site\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.test import RequestFactory\n"
        "from chat.admin import MessageAdmin\n"
        "from chat.models import Message\n"
        "request = RequestFactory().post('/admin/')\n"
        "request.user = get_user_model().objects.create_superuser("
        f"'boss-{uuid.uuid4().hex[:6]}', password='x')\n"
        f"message = Message.objects.get(room__slug={room!r}, number={sent['id']})\n"
        "MessageAdmin(Message, site).delete_model(request, message)\n",
    )
    for client in (author, *readers):
        assert await client.receive_type("message.deleted") == {
            "type": "message.deleted",
            "id": sent["id"],
        }

    # Mutes the author: their page is told at once, and their next send is refused,
    # whichever worker it is on.
    shell(
        cluster,
        "from django.contrib.auth import get_user_model\n"
        "from chat.models import Mute, Room\n"
        f"Mute.objects.create(user=get_user_model().objects.get(username={newcomer!r}),"
        f" room=Room.objects.get(slug={room!r}))\n",
    )
    assert await author.receive_type("mute") == {
        "type": "mute",
        "mute": {"scope": "room", "until": None},
    }
    await author.send({"type": "message.send", "body": "more spam", "client_id": "s2"})
    error = await author.receive_type("error")
    assert (error["code"], error["client_id"]) == ("muted", "s2")

    # And archives the room: every open page turns read-only at once.
    shell(
        cluster,
        "from chat.admin import RoomAdmin\n"
        "from chat.models import Room\n"
        "from django.contrib.admin.sites import site\n"
        f"RoomAdmin(Room, site).set_archived(Room.objects.filter(slug={room!r}), archived=True)\n",
    )
    for client in (author, *readers):
        frame = await client.receive_type("room")
        assert frame["room"]["archived"] is True
    await readers[1].send({"type": "message.send", "body": "late", "client_id": "l1"})
    assert (await readers[1].receive_type("error"))["code"] == "room_archived"


async def test_a_removed_member_loses_sockets_on_every_worker(cluster, newcomer):
    slug = f"priv-{uuid.uuid4().hex[:8]}"
    shell(
        cluster,
        "from django.contrib.auth import get_user_model\n"
        "from chat.models import Room\n"
        f"room = Room.objects.create(name='Private', slug={slug!r}, kind='private')\n"
        "room.members.add(*get_user_model().objects.filter("
        f"username__in=[{newcomer!r}, 'user03']))",
    )
    sockets = [await cluster.connect(newcomer, worker, slug) for worker in (0, 1)]
    staying = await cluster.connect("user03", 1, slug)
    shell(
        cluster,
        "from django.contrib.auth import get_user_model\n"
        "from chat.models import Room\n"
        f"Room.objects.get(slug={slug!r}).members.remove("
        f"get_user_model().objects.get(username={newcomer!r}))",
    )
    assert await asyncio.gather(*(closed_with(sock) for sock in sockets)) == [4404, 4404]
    await staying.send({"type": "ping"})
    assert (await staying.receive_type("pong"))["type"] == "pong"
