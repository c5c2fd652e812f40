"""Each socket's order, on two real workers: what a client is sent, and when.

- ids on a socket rise strictly and without holes; the one repeat allowed is
  the answer to a resend whose id the socket already has;
- every stored message is acknowledged on its author's socket before any
  later answer to that socket's frames, and before a 4429 close;
- an `error` echoes the frame's `client_id` whenever it is a string.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest
import websockets

from tests.integration.conftest import Cluster
from tests.integration.fault_clients import (
    GENEROUS,
    Streamer,
    assert_everyone_has_exactly_what_is_stored,
    converge,
    stored,
    streaming,
    until,
)

pytestmark = pytest.mark.integration


async def test_a_redis_restart_mid_stream_keeps_every_socket_in_order(
    private_redis, cluster_factory, database_url, room
):
    """Three clients on two workers stream while Redis stops for 3 s and comes back.

    A client whose message was stored but not acknowledged resends it; the
    answer must not overtake the ids its socket has not been sent yet.
    """
    cluster = cluster_factory(2, REDIS_URL=private_redis.url, **GENEROUS)
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2, 1 - i % 2], count=16, window=4)
        for i in range(3)
    ]
    async with streaming(clients, timeout=90) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 9, 30, "acks before the outage")
        await asyncio.to_thread(private_redis.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(private_redis.start)
        await sending
        await converge(clients, total=48)
    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )


async def socket_on(cluster: Cluster, username: str, worker: int, room: str) -> Any:
    token = await asyncio.to_thread(cluster.token, username, worker)
    url = cluster.workers[worker].url.replace("http", "ws", 1) + f"/ws/rooms/{room}/?token={token}"
    connection = await websockets.connect(url)
    assert json.loads(await connection.recv())["type"] == "welcome"
    return connection


async def message_ids(connection: Any, count: int) -> list[int]:
    """The ids of the next `count` message frames, passing over presence and typing."""
    ids: list[int] = []
    while len(ids) < count:
        frame = json.loads(await asyncio.wait_for(connection.recv(), 10))
        if frame["type"] == "message":
            ids.append(frame["id"])
        else:
            assert frame["type"] in {"presence", "typing"}, frame
    return ids


async def test_a_resend_answer_never_overtakes_ids_the_socket_has_not_seen(cluster_factory, room):
    """A worker lost broadcasts (its queue was full); a client resends at once.

    Worker 0 is stopped while user06 on worker 1 stores three messages: its
    queue holds one (capacity 1), the others are refused. Back, user05's socket
    on worker 0 has 1 and misses 2 and 3. user05 stores a message (4) and
    resends it at once: the answer comes in its place, after 2 and 3, never
    as "1, 4, 2, 3, 4".
    """
    cluster = cluster_factory(2, CHAT_LAYER_CAPACITY="1", **GENEROUS)
    slow, other = cluster.workers
    reader = await socket_on(cluster, "user05", 0, room)
    writer = await socket_on(cluster, "user06", 1, room)
    assert slow.process is not None
    slow.process.send_signal(signal.SIGSTOP)
    try:
        for n in range(3):
            frame = {"type": "message.send", "body": f"from 06 {n}", "client_id": f"06-{n}"}
            await writer.send(json.dumps(frame))
        assert await message_ids(writer, 3) == [1, 2, 3]
    finally:
        slow.process.send_signal(signal.SIGCONT)
    assert await message_ids(reader, 1) == [1]
    resent = {"type": "message.send", "body": "from 05", "client_id": "05-0"}
    await reader.send(json.dumps(resent))
    await reader.send(json.dumps(resent))
    ids = await message_ids(reader, 3)
    # The stored message's one repeat may follow, once the socket has it.
    assert ids == [2, 3, 4], ids
    assert "dropped" in slow.log() or "dropped" in other.log()
    await reader.close()
    await writer.close()


async def read_until_closed(connection: Any, timeout: float = 20) -> tuple[list[dict], int]:
    """Every frame until the server closes; (frames, close code)."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            text = await asyncio.wait_for(connection.recv(), deadline - time.monotonic())
            frames.append(json.loads(text))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return frames, closed.rcvd.code


async def test_a_burst_is_acknowledged_before_refusals_and_before_the_flooding_close(
    cluster_factory, database_url, room
):
    """One socket sends 60 messages as fast as it can, at the default limit (20 per 10 s)."""
    cluster = cluster_factory(2, CHAT_RATE_LIMIT="20/10s")
    token = await asyncio.to_thread(cluster.token, "user03", 0)
    url = cluster.workers[0].url.replace("http", "ws", 1) + f"/ws/rooms/{room}/?token={token}"
    connection = await websockets.connect(url)
    assert json.loads(await connection.recv())["type"] == "welcome"
    for n in range(60):
        frame = {"type": "message.send", "body": f"burst {n}", "client_id": f"burst-{n}"}
        await connection.send(json.dumps(frame))
    frames, code = await read_until_closed(connection)
    frames = [frame for frame in frames if frame["type"] not in {"presence", "typing"}]

    rows = await asyncio.to_thread(stored, database_url, room)
    stored_ids = [client_id for _, _, _, client_id in rows]
    assert 1 <= len(rows) <= 20
    acks = [frame for frame in frames if frame["type"] == "message"]
    # Every stored message is acknowledged, each once, in id order...
    assert [(a["id"], a["client_id"]) for a in acks] == [(n, c) for n, _, _, c in rows]
    # ... and all of them before the first refusal.
    kinds = [frame["type"] for frame in frames]
    first_refusal = kinds.index("error")
    assert kinds[:first_refusal] == ["message"] * len(rows), kinds
    refusals = frames[first_refusal:]
    assert [r["type"] for r in refusals] == ["error"] * 10
    assert all(r["code"] == "rate_limited" for r in refusals)
    assert [r["client_id"] for r in refusals] == [
        f"burst-{n}" for n in range(len(rows), len(rows) + 10)
    ]
    assert not set(stored_ids) & {r["client_id"] for r in refusals}
    assert code == 4429


@pytest.mark.parametrize(
    "client_id",
    ["", "x" * 65, " " * 65, "é" * 100],
    ids=["empty", "65-characters", "65-spaces", "100-accents"],
)
async def test_an_invalid_client_id_is_echoed_as_sent(cluster: Cluster, room, client_id):
    token = await asyncio.to_thread(cluster.token, "user04", 1)
    url = cluster.workers[1].url.replace("http", "ws", 1) + f"/ws/rooms/{room}/?token={token}"
    async with websockets.connect(url) as connection:
        assert json.loads(await connection.recv())["type"] == "welcome"
        frame = {"type": "message.send", "body": "hello", "client_id": client_id}
        await connection.send(json.dumps(frame))
        while (answer := json.loads(await asyncio.wait_for(connection.recv(), 10)))["type"] in {
            "presence",
            "typing",
        }:
            pass
        assert answer["type"] == "error" and answer["code"] == "bad_request", answer
        assert answer["client_id"] == client_id
