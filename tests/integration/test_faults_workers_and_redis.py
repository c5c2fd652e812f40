"""Faults with real processes: a worker killed, Redis down mid-stream or at the
handshake, and a bug in a handler.

Clients keep streaming through the fault; tests/integration/fault_clients.py tells
what each must end with.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import websockets

from tests.integration.conftest import Client
from tests.integration.fault_clients import (
    ABNORMAL_CLOSURE,
    GENEROUS,
    Streamer,
    assert_everyone_has_exactly_what_is_stored,
    assert_no_crash,
    close_code,
    converge,
    healthz,
    open_socket,
    pids_of,
    stored,
    streaming,
    until,
)

pytestmark = pytest.mark.integration


# Close codes a fault may produce (docs/protocol-v1.md): restart, try again later.
FAULT_CLOSE_CODES = {4012, 4013}


# --- a worker killed -----------------------------------------------------------


async def test_sigkill_of_a_worker_loses_and_repeats_nothing(cluster_factory, database_url, room):
    cluster = cluster_factory(2, **GENEROUS)
    pids = pids_of(cluster)
    doomed = cluster.workers[1]
    assert doomed.process is not None
    # Users 0 and 2 on worker 0, users 1 and 3 on the doomed worker 1.
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2, 0], count=12) for i in range(4)
    ]
    async with streaming(clients) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 12, 30, "acks before the kill")
        # Frozen first, so that its clients certainly have a send it never
        # answers when it dies; the other worker's clients stream on meanwhile.
        doomed.process.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        await until(
            lambda: time.monotonic() - frozen_at > 0.5 and all(c.pending for c in clients[1::2]),
            10,
            "sends in flight to the frozen worker",
        )
        await asyncio.to_thread(doomed.kill, signal.SIGKILL)
        await sending
        await converge(clients, total=48)

    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )
    for client in clients[1::2]:
        # Cut off without a close frame, then back on the survivor with after=,
        # where the send left unanswered was resent with its client_id.
        assert client.closes[:1] == [ABNORMAL_CLOSURE], client.closes
        assert client.connections >= 2
        cut = [a.client_id for a in client.answers if a.outcome == "closed"]
        assert cut and all(client_id in client.acks for client_id in cut), client.answers
    for client in clients[0::2]:
        # The survivor's own sockets never noticed.
        assert (client.connections, client.closes) == (1, [])
    assert_no_crash(cluster.workers[:1], pids[:1])


# --- Redis down, then back ------------------------------------------------------


async def test_redis_outage_mid_stream_answers_every_send_and_recovers(
    private_redis, cluster_factory, database_url, room
):
    cluster = cluster_factory(2, REDIS_URL=private_redis.url, **GENEROUS)
    pids = pids_of(cluster)
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2, 1 - i % 2], count=15)
        for i in range(4, 8)
    ]
    async with streaming(clients, timeout=75) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 12, 30, "acks before the outage")
        await asyncio.to_thread(private_redis.stop)
        down_at = time.monotonic()
        for worker in cluster.workers:
            status, report = await asyncio.to_thread(healthz, worker)
            assert (status, report["status"], report["db"], report["redis"]) == (
                503,
                "unavailable",
                "ok",
                "error",
            ), report

        def met_the_outage(client: Streamer) -> bool:
            refused = any(
                answer.sent_at >= down_at for answer in client.answers if answer.outcome != "ack"
            )
            return refused or any(at >= down_at for at in client.closed_at)

        # Down until every client has run into it, and at least two seconds.
        await until(lambda: all(map(met_the_outage, clients)), 20, "every client to meet it")
        await asyncio.sleep(max(0.0, down_at + 2 - time.monotonic()))
        await asyncio.to_thread(private_redis.start)
        for worker in cluster.workers:
            status, report = await asyncio.to_thread(healthz, worker)
            assert (status, report) == (200, {"status": "ok", "db": "ok", "redis": "ok"})
        await sending
        await converge(clients, total=60)

        # Broadcasts work again on the same workers: one more message reaches
        # every client live, on the socket it already has.
        sockets = [client.connections for client in clients]
        clients[0].plan.append("final")
        await clients[0].send_all(["final"])
        await converge(clients, total=61)
        assert [client.connections for client in clients] == sockets

    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )
    for client in clients:
        # Every send was answered: acknowledged, refused as unavailable, or
        # closed with a code that says why (never silence, never a 1011).
        outcomes = {(a.outcome, a.value) for a in client.answers if a.outcome != "ack"}
        assert outcomes <= {("unavailable", None), *(("closed", c) for c in FAULT_CLOSE_CODES)}
        assert set(client.closes) <= FAULT_CLOSE_CODES, client.closes
        # The outage closed its socket (4012, its broadcasts were lost); it resumed.
        assert client.closes[:1] == [4012] and client.connections >= 2, client.closes
    assert_no_crash(cluster.workers, pids)


async def test_a_socket_opened_while_redis_is_down_is_refused_with_4013(
    private_redis, cluster_factory, room
):
    cluster = cluster_factory(1, REDIS_URL=private_redis.url, **GENEROUS)
    worker = cluster.workers[0]
    pids = pids_of(cluster)
    token = await asyncio.to_thread(cluster.token, "user08")
    # An open socket fills the worker's Redis pools before the outage.
    before = Client("user08", await open_socket(worker, room, token))
    assert (await before.receive())["type"] == "welcome"

    await asyncio.to_thread(private_redis.stop)
    # The open socket is told that its broadcasts are gone, not left deaf.
    assert await close_code(before.connection) == 4012
    status, report = await asyncio.to_thread(healthz, worker)
    assert (status, report["db"], report["redis"]) == (503, "ok", "error"), report
    # Accepted (no HTTP error at the handshake), then closed with "try again later".
    refused = await open_socket(worker, room, token, after=0)
    assert await close_code(refused) == 4013

    await asyncio.to_thread(private_redis.start)
    # The very first socket after the return works: no stale pooled connection.
    first = Client("user08", await open_socket(worker, room, token))
    welcome = await first.receive()
    assert (welcome["type"], welcome["last_id"]) == ("welcome", None)
    other = await cluster.connect("user09", worker=0, room=room)
    await first.send({"type": "message.send", "body": "back", "client_id": "back-1"})
    ack = await first.receive_type("message")
    assert (ack["id"], ack["client_id"]) == (1, "back-1")
    seen = await other.receive_type("message")
    assert (seen["id"], seen["body"], seen["client_id"]) == (1, "back", None)
    assert await asyncio.to_thread(healthz, worker) == (
        200,
        {"status": "ok", "db": "ok", "redis": "ok"},
    )
    assert_no_crash(cluster.workers, pids)


async def test_an_unexpected_exception_closes_4011_and_never_reaches_daphne(cluster_factory, room):
    """A bug in a handler: the socket closes with 4011 (reconnect), logged once, daphne unharmed.

    daphne refuses the standard 1011 from an application: it raised inside
    daphne ("Exception inside application") and the client got no close code.
    """
    cluster = cluster_factory(1, application="tests.integration.faulty_asgi:application")
    client = await cluster.connect("user00", 0, room)
    await client.send({"type": "typing"})
    with pytest.raises(websockets.ConnectionClosed):
        await client.receive(timeout=10)
    assert client.connection.close_code == 4011

    log = cluster.workers[0].log()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "closing the socket with 4011" in errors[0], errors
    assert "Traceback" in log and "RuntimeError: a fault planted by the test" in log
    assert "Exception inside application" not in log

    # The client does what 4011 asks: it reconnects and goes on.
    again = await cluster.connect("user00", 0, room, after=0)
    await again.send({"type": "message.send", "body": "still here", "client_id": "c-1"})
    ack = await again.receive_type("message")
    assert (ack["id"], ack["client_id"]) == (1, "c-1")
    await again.close()
