"""deploy/haproxy/haproxy.cfg, run by a real HAProxy in front of workers of two "hosts".

The workers trust HAProxy's X-Forwarded headers (--proxy-headers), as in
docker-compose.scale.yml. HAProxy checks each one's /healthz every second:
two failures (a 503, or no answer) take it out of the rotation.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import websockets

from tests.integration.conftest import PASSWORD, Client, Cluster, Worker
from tests.integration.proxies import HAProxy, program
from tests.integration.test_nginx import signup_through
from tests.servers import PrivateRedis

pytestmark = pytest.mark.integration

PROXIED = ("--proxy-headers",)
# Two failed checks a second apart, and the time for the second to fail.
OUT_OF_ROTATION_WITHIN = 4.0
# A log line of a request retried on another worker: its retries (%rc) prefixed by "+".
REDISPATCHED = re.compile(r' \+\d+ "')


def token_through(url: str, username: str) -> str:
    request = urllib.request.Request(
        url + "/api/token/",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["token"])


async def connect_through(url: str, username: str, room: str, after: int | None = None) -> Client:
    token = await asyncio.to_thread(token_through, url, username)
    query = f"?token={token}" + (f"&after={after}" if after is not None else "")
    socket = await websockets.connect(url.replace("http", "ws", 1) + f"/ws/rooms/{room}/{query}")
    client = Client(username, socket)
    client.welcome = await client.receive_type("welcome")
    return client


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def sockets_served(worker: Worker) -> int:
    return worker.log().count("WSCONNECT /ws/rooms/")


async def test_a_chat_through_haproxy_spreads_sockets_over_both_hosts(
    cluster_factory, haproxy_factory, room
):
    cluster: Cluster = cluster_factory(2, server_args=PROXIED)
    proxy = haproxy_factory(cluster.workers)
    names = [f"user{i:02d}" for i in range(4)]
    clients = [await connect_through(proxy.url, name, room) for name in names]
    await clients[0].send({"type": "message.send", "body": "via haproxy", "client_id": "h1"})
    for client in clients:
        message = await client.receive_type("message")
        assert (message["id"], message["body"]) == (1, "via haproxy")
    await clients[3].send({"type": "message.send", "body": "and back"})
    for client in clients:
        assert (await client.receive_type("message"))["body"] == "and back"
    # leastconn: each worker carries two of the four.
    assert [sockets_served(worker) for worker in cluster.workers] == [2, 2]
    for client in clients:
        await client.close()
    await asyncio.sleep(0.5)
    # A socket's line is written when it ends: both workers, and never a token.
    socket_lines = [line for line in proxy.log().splitlines() if "/ws/rooms/" in line]
    assert len(socket_lines) == 4, proxy.log()
    for worker in cluster.workers:
        assert sum(f"workers/{worker.name} 101 " in line for line in socket_lines) == 2
    assert "token=" not in proxy.log()
    assert "[removed]" not in proxy.log()  # the query string is not logged at all


async def test_a_killed_worker_leaves_the_rotation_and_its_sockets_resume_on_the_other(
    cluster_factory, haproxy_factory, room
):
    cluster: Cluster = cluster_factory(2, server_args=PROXIED)
    proxy = haproxy_factory(cluster.workers)
    doomed, survivor = cluster.workers
    clients = [await connect_through(proxy.url, f"user{i:02d}", room) for i in range(6)]
    assert [sockets_served(worker) for worker in cluster.workers] == [3, 3]
    for number in (1, 2):
        await clients[0].send({"type": "message.send", "body": f"before {number}"})
        for client in clients:
            assert (await client.receive_type("message"))["id"] == number

    killed_at = time.monotonic()
    doomed.kill()  # SIGKILL: no goodbye to HAProxy or the clients
    # HAProxy closes the sockets the dead worker carried; the others stay open.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        closed = [client for client in clients if client.connection.close_code is not None]
        if len(closed) == 3:
            break
        await asyncio.sleep(0.05)
    alive = [client for client in clients if client not in closed]
    assert len(closed) == 3 and len(alive) == 3

    # While they are away, the room goes on.
    await alive[0].send({"type": "message.send", "body": "while away", "client_id": "w1"})
    for client in alive:
        assert (await client.receive_type("message"))["id"] == 3
    # They come back through HAProxy, resuming after the last id they saw: every
    # one lands on the survivor (the dead worker refuses, and HAProxy redispatches
    # until its checks have taken it out), and gets what it missed.
    back = [await connect_through(proxy.url, c.username, room, after=2) for c in closed]
    for client in back:
        assert client.welcome["last_id"] == 3
        replayed = await client.receive_type("message")
        assert (replayed["id"], replayed["body"]) == (3, "while away")
    assert sockets_served(survivor) == 6
    await back[0].send({"type": "message.send", "body": "back", "client_id": "b1"})
    for client in [*alive, *back]:
        assert (await client.receive_type("message"))["id"] == 4

    # The first of them were sent to the dead worker (the fewest connections) before its
    # checks had failed: refused, HAProxy tried them again on the survivor.
    redispatched = [line for line in proxy.log().splitlines() if REDISPATCHED.search(line)]
    assert redispatched and all(f"workers/{survivor.name} " in line for line in redispatched)
    # The dead worker left the rotation within seconds: at the first connection it
    # refused (observe layer4), or when its checks failed, whichever came first.
    await asyncio.to_thread(proxy.wait_until, doomed.name, "DOWN", OUT_OF_ROTATION_WITHIN)
    assert time.monotonic() - killed_at < OUT_OF_ROTATION_WITHIN + 3
    [(_, _, why)] = {change for change in proxy.states() if change[0] == doomed.name}
    assert "L4 unsuccessful connection" in why or "Layer4 connection problem" in why, why
    assert proxy.state(survivor.name) == "UP"
    answers = [await asyncio.to_thread(status_of, proxy.url + "/healthz") for _ in range(10)]
    assert set(answers) == {200}
    for client in [*alive, *back]:
        await client.close()


async def test_a_worker_answering_503_leaves_the_rotation_and_returns_when_well(
    private_redis: PrivateRedis, cluster_factory, haproxy_factory, room
):
    # Two workers on separate channel layers: only /healthz and routing matter here.
    sick = cluster_factory(1, server_args=PROXIED, REDIS_URL=private_redis.url).workers[0]
    well = cluster_factory(1, server_args=PROXIED).workers[0]
    proxy = haproxy_factory({"sick": sick, "well": well})
    assert {status_of(proxy.url + "/healthz") for _ in range(6)} == {200}

    private_redis.stop()  # its only shard: it can serve nothing
    assert (await asyncio.to_thread(status_of, well.url + "/healthz")) == 200
    took = await asyncio.to_thread(proxy.wait_until, "sick", "DOWN", OUT_OF_ROTATION_WITHIN)
    [(_, _, why)] = {change for change in proxy.states() if change[0] == "sick"}
    assert "Layer7 wrong status, code: 503" in why, why
    assert took < OUT_OF_ROTATION_WITHIN
    # Only the well worker is asked now: every answer is its own, and sockets work.
    answers = [await asyncio.to_thread(status_of, proxy.url + "/healthz") for _ in range(10)]
    assert set(answers) == {200}
    client = await connect_through(proxy.url, "user10", room)
    await client.send({"type": "message.send", "body": "still here"})
    assert (await client.receive_type("message"))["body"] == "still here"
    await client.close()

    private_redis.start()  # the same port: the worker's /healthz is 200 again
    await asyncio.to_thread(proxy.wait_until, "sick", "UP", 15)
    assert proxy.state("well") == "UP"


async def test_a_degraded_worker_stays_in_the_rotation(cluster_factory, haproxy_factory, tmp_path):
    """One shard of two is down: the worker still serves every room on the other,
    /healthz is 200 "degraded", and HAProxy keeps it."""
    shards = [PrivateRedis(tmp_path, name=f"shard{index}") for index in range(2)]
    for shard in shards:
        shard.start()
    try:
        worker = cluster_factory(
            1, server_args=PROXIED, REDIS_URL=",".join(shard.url for shard in shards)
        ).workers[0]
        proxy = haproxy_factory([worker])
        shards[0].stop()
        with urllib.request.urlopen(worker.url + "/healthz", timeout=5) as response:  # noqa: ASYNC210
            health = json.load(response)
        assert (response.status, health["status"], health["redis"]) == (200, "degraded", "degraded")
        await asyncio.sleep(3)  # three checks
        assert proxy.state(worker.name) == "UP", proxy.log()
        answers = [await asyncio.to_thread(status_of, proxy.url + "/healthz") for _ in range(5)]
        assert set(answers) == {200}
    finally:
        for shard in shards:
            shard.stop()


def test_a_spoofed_forwarded_for_changes_nothing_behind_haproxy(cluster_factory, haproxy_factory):
    """HAProxy sets X-Forwarded-For to the address it saw and passes Host as sent:
    the form's CSRF check passes (Host matches Origin), and a client cannot pick its
    own address for the per-address limits."""
    cluster = cluster_factory(2, server_args=PROXIED, CHAT_SIGNUP_LIMIT="3/3600s")
    proxy = haproxy_factory(cluster.workers)
    statuses = [
        signup_through(proxy.url, f"hspoof{i}", {"X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(5)
    ]
    # Three sign-ups per address: the fourth is refused whatever address it claims.
    assert statuses == [302, 302, 302, 429, 429]


def test_haproxy_refuses_to_start_without_a_health_check_host(tmp_path):
    """Without HEALTH_CHECK_HOST the checks would send no Host, which every worker
    refuses (400): every worker would leave the rotation. HAProxy stops at once instead."""
    config = tmp_path / "haproxy.cfg"
    unstarted = HAProxy({"w0": "127.0.0.1:8000"})  # for its config alone
    config.write_text(unstarted.config())
    shutil.rmtree(unstarted.dir)
    environment = {k: v for k, v in os.environ.items() if k != "HEALTH_CHECK_HOST"}
    check = [program("haproxy"), "-c", "-f", str(config)]
    refused = subprocess.run(check, env=environment, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "'http-check send' : 'hdr' expects <name> and <value>" in refused.stderr
    environment["HEALTH_CHECK_HOST"] = "localhost"
    accepted = subprocess.run(check, env=environment, capture_output=True, text=True, check=False)
    assert accepted.returncode == 0, accepted.stderr
