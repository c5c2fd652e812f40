"""Presence across two real daphne workers, and after one is killed."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request

import pytest

pytestmark = pytest.mark.integration


async def next_presence(client, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = await client.receive(max(0.01, deadline - time.monotonic()))
        if frame["type"] == "presence":
            return frame


def api_online(cluster, worker: int, slug: str) -> int:
    request = urllib.request.Request(
        cluster.workers[worker].url + "/api/rooms/",
        headers={"Authorization": f"Bearer {cluster.token('user09', worker)}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        rooms = json.load(response)["rooms"]
    return next(room["online"] for room in rooms if room["slug"] == slug)


async def test_presence_across_workers_with_several_sockets(cluster, room):
    watcher = await cluster.connect("user00", worker=0, room=room)
    first = await cluster.connect("user01", worker=1, room=room)
    assert await next_presence(watcher) == {"type": "presence", "joined": ["user01"]}
    second = await cluster.connect("user01", worker=0, room=room)
    assert second.welcome["online"] == ["user00", "user01"]
    await first.close()
    await second.send({"type": "ping"})
    assert (await second.receive_type("pong"))["type"] == "pong"
    with pytest.raises(asyncio.TimeoutError):
        await next_presence(watcher, timeout=1)  # still online on worker 0
    assert await asyncio.to_thread(api_online, cluster, 1, room) == 2
    await second.close()
    assert await next_presence(watcher) == {"type": "presence", "left": ["user01"]}
    assert await asyncio.to_thread(api_online, cluster, 1, room) == 1


async def test_a_killed_worker_leaves_no_ghosts(cluster, room):
    watcher = await cluster.connect("user02", worker=0, room=room)
    doomed = await cluster.connect("user03", worker=1, room=room)
    assert await next_presence(watcher) == {"type": "presence", "joined": ["user03"]}
    assert doomed.welcome["online"] == ["user02", "user03"]
    cluster.workers[1].kill(signal.SIGKILL)
    killed_at = time.monotonic()
    # The protocol promises `left` within 60 s.
    assert await next_presence(watcher, timeout=60) == {"type": "presence", "left": ["user03"]}
    assert time.monotonic() - killed_at < 60
    assert await asyncio.to_thread(api_online, cluster, 0, room) == 1
    again = await cluster.connect("user04", worker=0, room=room)
    assert again.welcome["online"] == ["user02", "user04"]
