"""Broadcast rooms, publishing over HTTP, state, viewers and live comments, on two real workers."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets

from tests.integration.conftest import Client, Cluster, base_env, manage

pytestmark = pytest.mark.integration


@pytest.fixture
def key(database_url: str, stage: str) -> str:
    """A bot key for the stage, made with the command, as its docs say."""
    return manage(base_env(database_url), "chat_bot_key", "scorebot", "--room", stage).strip()


def http(method: str, url: str, body: Any, key: str) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), dict(error.headers)


async def viewer(cluster: Cluster, worker: int, slug: str) -> Client:
    """A viewer who is not signed in, as a browser opens the page's socket."""
    base = cluster.workers[worker].url
    connection = await websockets.connect(
        base.replace("http", "ws", 1) + f"/ws/rooms/{slug}/", origin=base
    )
    client = Client("", connection)
    client.welcome = await client.receive_type("welcome")
    return client


async def next_of(client: Client, kind: str) -> dict[str, Any]:
    """The next frame of `kind`, passing over viewer counts."""
    while True:
        frame = await client.receive(timeout=10)
        if frame["type"] == kind:
            return frame
        assert frame["type"] in {"viewers", "presence"}, frame


async def test_an_http_publish_reaches_viewers_on_both_workers_once(cluster: Cluster, stage, key):
    viewers = [await viewer(cluster, index % 2, stage) for index in range(4)]
    signed_in = await cluster.connect("user16", 1, stage)
    url = cluster.workers[0].url + f"/api/rooms/{stage}/messages/"
    status, message, _ = await asyncio.to_thread(
        http, "POST", url, {"body": "Kick-off!", "client_id": "k-1"}, key
    )
    assert status == 201 and (message["id"], message["user"]) == (1, "scorebot")
    for client in [*viewers, signed_in]:
        frame = await next_of(client, "messages")
        assert [(m["id"], m["body"], m["client_id"]) for m in frame["messages"]] == [
            (1, "Kick-off!", None)
        ]
    # The same client_id again: the stored message, and nothing new for anyone.
    status, again, _ = await asyncio.to_thread(
        http, "POST", url, {"body": "Kick-off!", "client_id": "k-1"}, key
    )
    assert (status, again) == (200, message)
    status, _, _ = await asyncio.to_thread(http, "POST", url, {"body": "1-0"}, key)
    for client in viewers:
        frame = await next_of(client, "messages")
        assert [m["id"] for m in frame["messages"]] == [2]  # not a second 1
    for client in [*viewers, signed_in]:
        await client.close()


async def test_the_state_viewers_and_comments_across_workers(cluster: Cluster, stage, key):
    first = await viewer(cluster, 0, stage)
    assert first.welcome["user"] is None and first.welcome["state"] is None
    second = await viewer(cluster, 1, stage)
    # Viewers are counted over both workers, within the watcher's interval.
    while (await next_of(first, "viewers"))["count"] != 2:
        pass

    url = cluster.workers[1].url + f"/api/rooms/{stage}/state/"
    status, answer, _ = await asyncio.to_thread(http, "PUT", url, {"home": 2, "away": 1}, key)
    assert (status, answer["version"]) == (200, 1)
    for client in (first, second):
        state = await next_of(client, "room.state")
        assert (state["state"], state["version"]) == ({"home": 2, "away": 1}, 1)
    late = await viewer(cluster, 0, stage)
    assert late.welcome["state"] == {"home": 2, "away": 1}

    # A viewer who is not signed in may not post or comment; a member comments.
    await second.send({"type": "message.send", "body": "me!", "client_id": "v-1"})
    assert (await next_of(second, "error"))["code"] == "forbidden"
    commenter = await cluster.connect("user17", 1, stage)
    await commenter.send({"type": "comment.send", "body": "what a save", "time": 12.5})
    for client in (first, second, late):
        comment = await next_of(client, "comment")
        assert (comment["user"], comment["body"], comment["time"]) == (
            "user17",
            "what a save",
            12.5,
        )
    status, page, _ = await asyncio.to_thread(
        http, "GET", cluster.workers[0].url + f"/api/rooms/{stage}/messages/", None, key
    )
    assert status == 200 and page["messages"] == []  # comments are never stored
    for client in (first, second, late, commenter):
        await client.close()


async def test_a_wrong_key_a_foreign_room_and_bad_state_are_refused(
    cluster: Cluster, stage, key, room
):
    base = cluster.workers[0].url
    cases = [
        ("POST", f"/api/rooms/{stage}/messages/", {"body": "x"}, key[:-2] + "xx", 401),
        ("POST", f"/api/rooms/{room}/messages/", {"body": "x"}, key, 403),
        ("PUT", f"/api/rooms/{stage}/state/", {"big": "x" * 20_000}, key, 400),
        ("POST", f"/api/rooms/{stage}/messages/", {"body": ""}, key, 400),
    ]
    for method, path, body, used, status in cases:
        answer = await asyncio.to_thread(http, method, base + path, body, used)
        assert answer[0] == status, (path, answer)
