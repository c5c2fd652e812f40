"""Replies, reactions, mentions and the page's own socket, across two real workers."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest
import websockets

from tests.integration.conftest import PASSWORD, Client, Cluster

pytestmark = pytest.mark.integration


async def me_socket(cluster: Cluster, username: str, worker: int) -> tuple[Client, dict[str, Any]]:
    """A user's /ws/me/ socket on `worker`, and its first frame (`rooms`)."""
    token = await asyncio.to_thread(cluster.token, username, worker)
    url = cluster.workers[worker].url.replace("http", "ws", 1) + f"/ws/me/?token={token}"
    client = Client(username, await websockets.connect(url))
    return client, await client.receive_type("rooms")


async def room_reaching(client: Client, slug: str, **wanted: Any) -> dict[str, Any]:
    """`room` frames about `slug` until one has the `wanted` values."""
    while True:
        frame = await client.receive(timeout=10)
        if frame["type"] == "room" and frame["room"]["slug"] == slug:
            if all(frame["room"][key] == value for key, value in wanted.items()):
                return frame["room"]


async def say(client: Client, body: str, client_id: str, **extra: Any) -> dict[str, Any]:
    await client.send({"type": "message.send", "body": body, "client_id": client_id, **extra})
    while True:
        frame = await client.receive_type("message")
        if frame["client_id"] == client_id:
            return frame


async def test_replies_reactions_and_mentions_reach_the_other_worker(cluster: Cluster, room):
    ann = await cluster.connect("user10", 0, room)
    ben = await cluster.connect("user11", 1, room)
    await say(ann, "Lunch at noon?", "a-1")
    assert (await ben.receive_type("message"))["id"] == 1

    # A reply, quoted on the other worker.
    ack = await say(ben, "@user10 noon works", "b-1", reply_to=1)
    seen = await ann.receive_type("message")
    assert seen["id"] == ack["id"] == 2
    assert seen["reply_to"] == {
        "id": 1,
        "user": "user10",
        "body": "Lunch at noon?",
        "deleted": False,
    }
    assert seen["mentions"] == ["user10"]

    # Reactions from both workers, each change versioned.
    await ann.send({"type": "reaction.add", "id": 2, "emoji": "👍"})
    await ben.send({"type": "reaction.add", "id": 2, "emoji": "👍"})
    finals = []
    for client in (ann, ben):
        frames = [await client.receive_type("message.reactions") for _ in range(2)]
        newest = max(frames, key=lambda frame: frame["version"])
        assert sorted(frame["version"] for frame in frames) == [1, 2]
        finals.append(newest["reactions"])
    assert finals[0] == finals[1]
    assert finals[0][0]["count"] == 2 and sorted(finals[0][0]["users"]) == ["user10", "user11"]

    # An edit that drops the mention; then the original goes, and the reply says so.
    await ben.send({"type": "message.edit", "id": 2, "body": "noon works"})
    for client in (ann, ben):
        edited = await client.receive_type("message.edited")
        assert (edited["id"], edited["mentions"]) == (2, [])
    await ann.send({"type": "message.delete", "id": 1})
    for client in (ann, ben):
        assert (await client.receive_type("message.deleted"))["id"] == 1
    await ben.send({"type": "history"})
    history = await ben.receive_type("history")
    assert history["messages"][0]["reply_to"] == {
        "id": 1,
        "user": "user10",
        "body": "",
        "deleted": True,
    }
    await ann.close()
    await ben.close()


async def test_the_page_socket_counts_what_another_worker_stores(cluster: Cluster, room):
    me, rooms = await me_socket(cluster, "user12", 1)
    assert {entry["slug"]: entry for entry in rooms["rooms"]}[room]["unread"] == 0
    writer = await cluster.connect("user13", 0, room)
    await room_reaching(me, room, online=1)

    await say(writer, "just saying", "w-1")
    await room_reaching(me, room, unread=1, mentions=0)
    await say(writer, "@user12 your turn", "w-2")
    await room_reaching(me, room, unread=2, mentions=1)
    while (frame := await me.receive(timeout=10))["type"] != "notify":
        pass
    assert (frame["room"], frame["id"], frame["user"], frame["mention"]) == (
        room,
        2,
        "user13",
        True,
    )

    # Read on a socket of the reader's on the other worker: counts go down here.
    reader = await cluster.connect("user12", 0, room)
    await reader.send({"type": "read", "id": 2})
    await room_reaching(me, room, unread=0, mentions=0)

    # A mention taken back by an edit is uncounted.
    await say(writer, "@user12 and again", "w-3")
    await room_reaching(me, room, unread=1, mentions=1)
    await writer.send({"type": "message.edit", "id": 3, "body": "never mind"})
    await room_reaching(me, room, unread=1, mentions=0)
    for client in (me, writer, reader):
        await client.close()


async def test_a_new_direct_conversation_reaches_the_page_socket_on_the_other_worker(
    cluster: Cluster,
):
    me, rooms = await me_socket(cluster, "user14", 1)
    assert not [entry for entry in rooms["rooms"] if entry["kind"] == "direct"]
    # Opened by the other person, through the other worker's page.
    await asyncio.to_thread(open_direct, cluster, "user15", "user14")
    while True:
        frame = await me.receive(timeout=10)
        if frame["type"] == "room" and frame["room"]["kind"] == "direct":
            break
    assert (frame["room"]["name"], frame["room"]["notify"]) == ("user15", "all")
    await me.close()


def open_direct(cluster: Cluster, username: str, other: str) -> None:
    """Log in through the form on worker 0 and open /dm/<other>/, as a person would."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = cluster.workers[0].url
    page = opener.open(base + "/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    form = {"csrfmiddlewaretoken": token[1], "username": username, "password": PASSWORD}
    opener.open(base + "/accounts/login/", urllib.parse.urlencode(form).encode(), timeout=10)
    response = opener.open(base + f"/dm/{other}/", timeout=10)
    assert re.search(r"/rooms/dm-\d+-\d+/$", response.url), response.url
