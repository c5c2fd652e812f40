"""The holes an outsider found, tried again over the network against real workers.

Each of these was proven with a request before its fix: a sign-up under the
publisher's name, a search loop, nested JSON, a viewer who kept watching a
room closed to viewers, a foreign page's socket. (Spoofed addresses behind
nginx: test_nginx.py; image memory: test_image_memory_live.py.)
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import PASSWORD, Cluster, base_env, manage
from tests.integration.test_nginx import signup_through

pytestmark = pytest.mark.integration


def call(method: str, url: str, body: bytes | None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


def test_nobody_signs_up_as_the_publisher_and_bots_never_log_in(cluster_factory, database_url):
    worker = cluster_factory(1).workers[0]
    assert signup_through(worker.url, "announcements", {}) == 200  # the form again, refused
    assert signup_through(worker.url, "Announcements", {}) == 200
    shell = (
        "from django.contrib.auth import get_user_model\n"
        "print(get_user_model().objects.filter(username__iexact='announcements').count())"
    )
    assert manage(base_env(database_url), "shell", "-c", shell).split()[-1] == "0"
    # The site's publisher is a bot: its posts are its own, and it cannot log in.
    manage(base_env(database_url), "chat_publish", "general", "Official")
    manage(
        base_env(database_url),
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "bot = get_user_model().objects.get(username='announcements')\n"
        f"bot.set_password({PASSWORD!r}); bot.save()",
    )
    body = json.dumps({"username": "announcements", "password": PASSWORD}).encode()
    assert call("POST", worker.url + "/api/token/", body)[0] == 401


def test_nested_json_is_400_on_the_open_endpoints(cluster_factory):
    worker = cluster_factory(1).workers[0]
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    status, answer = call("POST", worker.url + "/api/token/", deep)
    assert (status, answer["error"]) == (400, "bad_request")
    token = Cluster([worker]).token("user01")
    status, answer = call("POST", worker.url + "/api/rooms/general/messages/", deep, token)
    assert (status, answer["error"]) == (400, "bad_request")
    assert worker.process is not None and worker.process.poll() is None


def test_a_search_loop_is_refused(cluster_factory):
    cluster = cluster_factory(1, CHAT_SEARCH_RATE_LIMIT="3/60s")
    url = cluster.workers[0].url + "/api/search/?q=hello"
    token = cluster.token("user02")
    statuses = [call("GET", url, None, token)[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


async def test_a_viewer_is_closed_when_the_room_stops_taking_viewers(cluster_factory, stage):
    cluster = cluster_factory(2)
    sockets = []
    for worker in cluster.workers:
        connection = await websockets.connect(
            worker.url.replace("http", "ws", 1) + f"/ws/rooms/{stage}/", origin=worker.url
        )
        assert json.loads(await connection.recv())["type"] == "welcome"
        sockets.append(connection)
    # With the workers' environment: the change is told on their channel layer.
    await asyncio.to_thread(
        manage,
        cluster.workers[0].env,
        "shell",
        "-c",
        "from chat.models import Room\n"
        f"room = Room.objects.get(slug={stage!r}); room.public_viewing = False; room.save()",
    )
    for connection in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = json.loads(await asyncio.wait_for(connection.recv(), 10))
                assert frame["type"] == "viewers", frame
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
