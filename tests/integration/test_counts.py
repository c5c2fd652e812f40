"""Counts that are right across two real workers: a broadcast room's viewers, and the
lobby's online counts after a worker is killed (docs/architecture.md, Presence)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from typing import Any

import pytest

from tests.integration.conftest import Client, Cluster
from tests.integration.test_broadcast_live import viewer
from tests.integration.test_conversation_live import me_socket, room_reaching

pytestmark = pytest.mark.integration

# The watcher's tick (CHAT_LAYER_CHECK_INTERVAL, 2 s): counts settle within one.
TICK = 2.0
# The last viewer count each client was told.
TOLD: dict[Client, int] = {}


async def count_settles(client: Client, count: int, timeout: float = 4 * TICK + 2) -> None:
    """The client's viewer count comes to `count` and stays there for over a tick.

    Counts in between may pass (a page that opened is counted before one that
    closed a moment earlier is let go), but the last word must be `count`.
    """
    current = TOLD.get(client, client.welcome["viewers"])
    deadline = time.monotonic() + timeout
    quiet_until = time.monotonic() + TICK + 0.5
    while True:
        if current == count and time.monotonic() >= quiet_until:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"the count stayed at {current}, not {count}")
        left = min(deadline, quiet_until if current == count else deadline) - time.monotonic()
        try:
            frame = await client.receive(left)
        except TimeoutError:
            continue
        if frame["type"] == "viewers":
            current = TOLD[client] = frame["count"]
            quiet_until = time.monotonic() + TICK + 0.5


async def page(cluster: Cluster, username: str, worker: int, slug: str) -> tuple[Client, Client]:
    """A signed-in page of a broadcast room: its room socket and its /ws/me/ socket."""
    room = await cluster.connect(username, worker, slug)
    me, _ = await me_socket(cluster, username, worker)
    return room, me


async def test_viewers_are_exact_as_pages_open_and_close_on_two_workers(cluster: Cluster, stage):
    """Two signed-in pages (a room socket and a /ws/me/ socket each) and two viewers who
    are not signed in: 4 watching, not 6, on every page, and exact as they close."""
    ann, ann_me = await page(cluster, "user12", 0, stage)
    ben, ben_me = await page(cluster, "user13", 1, stage)
    first = await viewer(cluster, 0, stage)
    second = await viewer(cluster, 1, stage)
    watching = [ann, ben, first, second]
    await asyncio.gather(*(count_settles(client, 4) for client in watching))

    # Pages close one by one, on either worker: every page left follows exactly.
    await ben.close()
    await ben_me.close()
    watching.remove(ben)
    await asyncio.gather(*(count_settles(client, 3) for client in watching))
    await first.close()
    watching.remove(first)
    await asyncio.gather(*(count_settles(client, 2) for client in watching))

    # One opens while another closes, within one tick: the newcomer was welcomed with
    # a count of 3, the others were told 2 before; all agree on 2 after the tick.
    late = await viewer(cluster, 1, stage)
    assert late.welcome["viewers"] == 3
    await second.close()
    watching.remove(second)
    watching.append(late)
    await asyncio.gather(*(count_settles(client, 2) for client in watching))
    for client in (ann, ann_me, late):
        await client.close()


async def test_a_killed_workers_viewers_stop_counting(cluster: Cluster, stage):
    """A SIGKILLed worker cannot take its count out: it expires (five ticks)."""
    stays = await viewer(cluster, 0, stage)
    for _ in range(3):
        await viewer(cluster, 1, stage)
    await count_settles(stays, 4)
    cluster.workers[1].kill(signal.SIGKILL)
    killed_at = time.monotonic()
    await count_settles(stays, 1, timeout=5 * TICK + 2 * TICK + 2)
    assert time.monotonic() - killed_at < 5 * TICK + 2 * TICK + 2
    await stays.close()


def api_online(cluster: Cluster, worker: int, username: str, slug: str) -> int:
    request = urllib.request.Request(
        cluster.workers[worker].url + "/api/rooms/",
        headers={"Authorization": f"Bearer {cluster.token(username, worker)}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        rooms = json.load(response)["rooms"]
    return int(next(room["online"] for room in rooms if room["slug"] == slug))


async def test_the_lobby_drops_a_killed_workers_sockets_within_the_expiry(
    cluster_factory: Any, room: str
):
    """The lobby's counts (every page's /ws/me/) lose the users of a killed worker within
    4 heartbeats, also in a room where the surviving worker has no socket at all."""
    heartbeat = 2
    cluster = cluster_factory(2, CHAT_HEARTBEAT_SECONDS=str(heartbeat))
    lobby, rooms = await me_socket(cluster, "user14", 0)
    assert next(entry for entry in rooms["rooms"] if entry["slug"] == room)["online"] == 0
    doomed = [await cluster.connect(name, 1, room) for name in ("user15", "user16")]
    await room_reaching(lobby, room, online=2)
    assert await asyncio.to_thread(api_online, cluster, 0, "user14", room) == 2

    cluster.workers[1].kill(signal.SIGKILL)
    killed_at = time.monotonic()
    expiry = 4 * heartbeat  # docs/architecture.md, Presence: the expiry
    await asyncio.wait_for(room_reaching(lobby, room, online=0), timeout=expiry + 10)
    took = time.monotonic() - killed_at
    assert took <= expiry + 1.5, took
    assert await asyncio.to_thread(api_online, cluster, 0, "user14", room) == 0
    # A lobby opened now agrees.
    again, rooms = await me_socket(cluster, "user17", 0)
    assert next(entry for entry in rooms["rooms"] if entry["slug"] == room)["online"] == 0
    for client in (lobby, again):
        await client.close()
    del doomed


async def test_the_lobby_follows_pages_closing_on_another_worker(cluster: Cluster, room: str):
    """Nobody left in the room: the lobby says 0, not the last count it heard."""
    lobby, _ = await me_socket(cluster, "user18", 0)
    pages = [await cluster.connect("user19", worker, room) for worker in (0, 1)]
    await room_reaching(lobby, room, online=1)
    for client in pages:
        await client.close()
    await room_reaching(lobby, room, online=0)
    await lobby.close()
