"""Past one machine, with real processes: three Redis shards (each with a replica, under
three Sentinels, or plain), two groups of daphne workers ("hosts").

- Rooms on every shard: messages, presence and rate limits are right with sockets on
  both hosts.
- A shard's master killed with SIGKILL: Sentinel promotes its replica; only the
  sockets that lived on that shard close (4012) and resume; ids stay gapless, every
  acknowledged message is stored once and reaches every socket once, and the first
  message in an affected room arrives within 5 s of the kill.
- A shard restarted without a replica: the same.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import websockets

from chat.platform.redis.routing import room_shard, user_shard
from tests.integration.conftest import (
    PASSWORD,
    REDIS_URL,
    ROOT,
    SERVER,
    Cluster,
    Worker,
    base_env,
    manage,
)
from tests.integration.fault_clients import (
    GENEROUS,
    Streamer,
    assert_everyone_has_exactly_what_is_stored,
    stored,
    streaming,
    until,
)
from tests.servers import PrivateRedis, Sentinels

pytestmark = pytest.mark.integration

SHARDS = 3
MASTERS = [f"chat-{index}" for index in range(SHARDS)]


class Topology:
    """Three masters, a replica of each, and three Sentinels watching them."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.masters = [PrivateRedis(self.dir, name=f"master-{i}") for i in range(SHARDS)]
        self.replicas = [
            PrivateRedis(self.dir, name=f"replica-{i}", replica_of=master.port)
            for i, master in enumerate(self.masters)
        ]
        self.sentinels = Sentinels(
            self.dir, {name: m.port for name, m in zip(MASTERS, self.masters, strict=True)}
        )

    def start(self) -> None:
        for server in [*self.masters, *self.replicas]:
            server.start()
        self.sentinels.start()

    def stop(self) -> None:
        self.sentinels.stop()
        for server in [*self.masters, *self.replicas]:
            server.stop()

    def environment(self) -> dict[str, str]:
        return {
            "REDIS_SENTINELS": self.sentinels.addresses,
            "REDIS_SENTINEL_MASTERS": ",".join(MASTERS),
        }


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    """Request it before `cluster_factory`, so that it outlives the workers."""
    servers = Topology(tmp_path)
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def plain_shards(tmp_path: Path) -> Iterator[list[PrivateRedis]]:
    servers = [PrivateRedis(tmp_path, name=f"shard-{i}") for i in range(SHARDS)]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def health(worker: Any) -> dict[str, Any]:
    with urllib.request.urlopen(worker.url + "/healthz", timeout=10) as response:
        return dict(json.load(response))


def rooms_on(database_url: str, shards: list[int]) -> dict[int, str]:
    """A public room of this test's own on each of `shards`: {shard: slug}."""
    found: dict[int, str] = {}
    with psycopg.connect(database_url, autocommit=True) as connection:
        while set(found) != set(shards):
            slug = f"so-{time.monotonic_ns()}"
            (pk,) = connection.execute(
                "INSERT INTO chat_room (name, slug, description, kind, archived, created,"
                " last_message_number, public_viewing, live_comments, state_version)"
                " VALUES (%s, %s, '', 'public', false, now(), 0, false, false, 0) RETURNING id",
                (slug, slug),
            ).fetchone()
            shard = room_shard(pk, SHARDS)
            if shard in shards and shard not in found:
                found[shard] = slug
            else:
                connection.execute("DELETE FROM chat_room WHERE id = %s", (pk,))
    return found


def person(database_url: str) -> str:
    """A new user of this test's own (whose window holds no message yet); their name."""
    name = f"p-{uuid.uuid4().hex[:10]}"
    manage(
        base_env(database_url),
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.create_user({name!r}, password={PASSWORD!r})",
    )
    return name


def user_pks(database_url: str, usernames: list[str]) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT username, id FROM auth_user WHERE username = ANY(%s)", (usernames,)
        ).fetchall()
    return {str(name): int(pk) for name, pk in rows}


async def test_rooms_on_every_shard_with_sockets_on_both_hosts(
    topology, cluster_factory, database_url, users
):
    cluster = cluster_factory(2, CHAT_RATE_LIMIT="6/60s", **topology.environment())
    rooms = rooms_on(database_url, list(range(SHARDS)))
    # People of this test's own: the database counts anyone's messages of the window.
    writer, sender = person(database_url), person(database_url)
    for shard, slug in rooms.items():
        ann = await cluster.connect(writer, 0, slug)
        ben = await cluster.connect("user01", 1, slug)
        # Presence across hosts: ann sees ben come online.
        assert (await ann.receive_type("presence"))["joined"] == ["user01"]
        await ann.send({"type": "message.send", "body": f"hi {shard}", "client_id": f"a{shard}"})
        for client in (ann, ben):
            message = await client.receive_type("message")
            assert (message["id"], message["body"]) == (1, f"hi {shard}")
        await ben.close()
        assert (await ann.receive_type("presence"))["left"] == ["user01"]
        await ann.close()
    # The rate limit is one per user over every shard and host: 6 a minute in all.
    answers = []
    for index, slug in enumerate([*rooms.values(), *rooms.values()]):
        client = await cluster.connect(sender, index % 2, slug)
        await client.send({"type": "message.send", "body": "again", "client_id": f"r{index}"})
        frame = await client.receive()
        while frame["type"] == "presence":
            frame = await client.receive()
        answers.append(frame.get("code", frame["type"]))
        await client.close()
    assert answers == ["message"] * 6, answers
    client = await cluster.connect(sender, 0, rooms[0])
    await client.send({"type": "message.send", "body": "one too many", "client_id": "r9"})
    assert (await client.receive_type("error"))["code"] == "rate_limited"


async def fault_scenario(
    cluster: Cluster, database_url: str, users: list[str], fault: Any, recovered: Any
) -> None:
    """Stream into a room on the faulty shard and one elsewhere, from both hosts, while
    `fault(shard)` strikes; then check order, storage, delivery and who was closed."""
    # Every worker has a queue on every shard; a group's messages queue on its own
    # shard: only the sockets of the faulty shard's rooms (and users) may close.
    faulty, healthy = 1, 0
    rooms = rooms_on(database_url, [faulty, healthy])
    pks = user_pks(database_url, users)
    # Users whose own group is not on the faulty shard: their sockets depend on it
    # only through the room.
    people = [name for name in users if user_shard(pks[name], SHARDS) != faulty][:4]
    streams = {
        shard: [
            Streamer(cluster, name, slug, workers=[index % 2, 1 - index % 2], count=40)
            for index, name in enumerate(people)
        ]
        for shard, slug in rooms.items()
    }
    everyone = [client for clients in streams.values() for client in clients]
    async with streaming(everyone, timeout=90) as sending:
        await until(lambda: all(c.last_id >= 10 for c in everyone), 30, "a first stretch")
        struck = time.monotonic()
        await asyncio.to_thread(fault, faulty)
        await asyncio.to_thread(recovered, faulty)
        await sending
    # Only the sockets that lived on the faulty shard were closed, and they resumed.
    for client in streams[faulty]:
        assert 4012 in client.closes, (client.username, client.closes)
    for client in streams[healthy]:
        assert client.closes == [], (client.username, client.closes)
    for shard, slug in rooms.items():
        assert_everyone_has_exactly_what_is_stored(streams[shard], stored(database_url, slug))
    # The first message in the affected room after the strike arrived within 5 s of it.
    first = min(
        a.answered_at
        for c in streams[faulty]
        for a in c.answers
        if a.outcome == "ack" and a.sent_at >= struck
    )
    assert first - struck <= 5, f"first delivery {first - struck:.1f} s after the strike"
    print(f"strike to the first delivery in the affected room: {first - struck:.2f} s")


async def test_a_masters_sigkill_is_a_failover_that_closes_only_its_sockets(
    topology, cluster_factory, database_url, users
):
    cluster = cluster_factory(2, **GENEROUS, **topology.environment())
    timings: dict[str, float] = {}

    def kill(shard: int) -> None:
        timings["kill"] = time.monotonic()
        topology.masters[shard].stop()  # SIGKILL

    def promoted(shard: int) -> None:
        replica = topology.replicas[shard].port
        deadline = time.monotonic() + 20
        while topology.sentinels.master_port(MASTERS[shard]) != replica:
            assert time.monotonic() < deadline, "Sentinel promoted no replica"
            time.sleep(0.05)
        timings["promoted"] = time.monotonic()

    await fault_scenario(cluster, database_url, users, kill, promoted)
    print(f"kill to promotion: {timings['promoted'] - timings['kill']:.2f} s")


async def test_a_shard_restarted_without_a_replica_closes_only_its_sockets(
    plain_shards, cluster_factory, database_url, users
):
    urls = ",".join(server.url for server in plain_shards)
    cluster = cluster_factory(2, REDIS_URL=urls, **GENEROUS)

    def restart(shard: int) -> None:
        plain_shards[shard].stop()
        plain_shards[shard].start()  # empty: its groups, queues and keys are gone

    await fault_scenario(cluster, database_url, users, restart, lambda shard: None)


async def test_a_killed_worker_leaves_every_group_within_a_few_heartbeats(
    cluster_factory, room, users
):
    """Its channels would stay in every group for CHAT_GROUP_EXPIRY (a day): every
    broadcast writing to a dead queue, and past its capacity a warning each time."""
    cluster = cluster_factory(
        2, CHAT_HEARTBEAT_SECONDS="1", CHAT_LAYER_CAPACITY="20", CHAT_RATE_LIMIT="10000/10s"
    )
    prefix = cluster.workers[0].env["CHAT_LAYER_PREFIX"]
    ann = await cluster.connect("user03", 0, room)
    await cluster.connect("user04", 1, room)  # ben, on the worker killed below
    client = redis.Redis.from_url(REDIS_URL)
    group_keys = [key.decode() for key in client.scan_iter(f"{prefix}:group:*")]
    processes = {m.decode().split("!")[0] for key in group_keys for m in client.zrange(key, 0, -1)}
    assert len(processes) == 2  # both workers are in the groups
    cluster.workers[1].kill()  # SIGKILL, ben's socket open: its channels stay in the groups
    killed = time.monotonic()

    sent = 0

    async def send(count: int) -> None:
        nonlocal sent
        for _ in range(count):
            sent += 1
            await ann.send({"type": "message.send", "body": f"m{sent}", "client_id": f"m{sent}"})
            await ann.receive_type("message")
            await asyncio.sleep(0.02)

    def members() -> set[str]:
        return {m.decode().split("!")[0] for k in group_keys for m in client.zrange(k, 0, -1)}

    while len(members()) > 1:
        assert time.monotonic() - killed < 10, "the dead worker is still in the groups"
        await send(10)
    reaped = time.monotonic() - killed
    log = cluster.workers[0].log()
    assert "took its" in log and "out of every group" in log
    dropped_before = log.count("over capacity")
    await send(100)  # past the dead queue's capacity many times over
    assert cluster.workers[0].log().count("over capacity") == dropped_before
    client.close()
    print(f"a killed worker left every group {reaped:.1f} s after the SIGKILL")


async def test_a_shard_down_at_start_up_refuses_only_its_rooms(
    plain_shards, cluster_factory, database_url, users
):
    down = 2
    plain_shards[down].stop()
    urls = ",".join(server.url for server in plain_shards)
    cluster = cluster_factory(1, REDIS_URL=urls)  # it starts: its /healthz answers 200
    body = health(cluster.workers[0])
    assert (body["status"], body["redis"]) == ("degraded", "degraded")
    assert [shard["status"] for shard in body["redis_shards"]] == ["ok", "ok", "error"]
    rooms = rooms_on(database_url, [0, down])
    pks = user_pks(database_url, users)
    name = next(name for name in users if user_shard(pks[name], SHARDS) != down)
    token = await asyncio.to_thread(cluster.token, name)
    url = cluster.workers[0].url.replace("http", "ws", 1)
    async with websockets.connect(f"{url}/ws/rooms/{rooms[down]}/?token={token}") as refused:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4013
    fine = await cluster.connect(name, 0, rooms[0])
    await fine.send({"type": "message.send", "body": "here", "client_id": "h"})
    assert (await fine.receive_type("message"))["body"] == "here"
    plain_shards[down].start()
    back = await cluster.connect(name, 0, rooms[down])  # the shard is back: served
    assert back.welcome["room"]["slug"] == rooms[down]


def test_a_sentinel_that_knows_no_such_master_stops_the_worker_saying_so(
    topology, database_url, tmp_path
):
    env = base_env(
        database_url,
        REDIS_SENTINELS=topology.sentinels.addresses,
        REDIS_SENTINEL_MASTERS="chat-0,nosuch",
    )
    worker = Worker(env, tmp_path, "misconfigured")
    command = [*SERVER, *worker.server_args(), "-b", "127.0.0.1", "-p", str(worker.port)]
    result = subprocess.run(
        [*command, worker.application],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "knows a master named 'nosuch'" in result.stdout + result.stderr


class Front:
    """HAProxy, where a test's clients would otherwise name a worker."""

    def __init__(self, url: str) -> None:
        self.url = url


async def test_a_whole_host_killed_its_sockets_resume_on_the_other_through_haproxy(
    topology, cluster_factory, haproxy_factory, pgbouncer, database_url, room, users
):
    """The layout of docs/scaling.md: Sentinel shards, PgBouncer, two hosts of two
    workers each behind HAProxy. Host A dies whole; its sockets come back through the
    same address, on host B, and resume where they were."""
    env = {
        **GENEROUS,
        **topology.environment(),
        "DATABASE_URL": pgbouncer.through(database_url),
        "DATABASE_PGBOUNCER": "1",
    }
    workers = cluster_factory(4, server_args=("--proxy-headers",), **env).workers
    host_a, host_b = workers[:2], workers[2:]
    proxy = haproxy_factory({"a0": host_a[0], "a1": host_a[1], "b0": host_b[0], "b1": host_b[1]})
    front = Cluster([Front(proxy.url)])  # type: ignore[list-item]
    clients = [Streamer(front, name, room, workers=[0], count=60) for name in users[:6]]
    async with streaming(clients, timeout=120) as sending:
        await until(lambda: all(c.last_id >= 10 for c in clients), 30, "a first stretch")
        for worker in host_a:
            worker.kill()  # SIGKILL: the whole host at once
        for name in ("a0", "a1"):
            await asyncio.to_thread(proxy.wait_until, name, "DOWN")
        await sending
    closed = [client for client in clients if client.closes]
    assert closed, "no socket was on host A"
    assert_everyone_has_exactly_what_is_stored(clients, stored(database_url, room))
