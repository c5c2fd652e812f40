"""Faults with real processes: the database down, then slow, behind a proxy that can
fail on command.

Clients keep streaming through the fault; tests/integration/fault_clients.py tells
what each must end with.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.integration.conftest import Client, free_port
from tests.integration.fault_clients import (
    GENEROUS,
    Answer,
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


# --- a database that can fail on command ------------------------------------


class DatabaseProxy:
    """A TCP proxy between the workers and PostgreSQL, on a thread of its own.

    `down()` cuts every connection and refuses new ones (accepted, then reset);
    `slow(seconds)` holds every chunk of bytes, both ways, that long; `up()`
    ends both. Its own thread keeps it serving while the test blocks its loop.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.delay = 0.0
        self.refusing = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None

    def url(self, database_url: str) -> str:
        """`database_url`, through this proxy."""
        parts = urlsplit(database_url)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def start(self) -> None:
        self.thread.start()
        self.server = self.run(asyncio.start_server(self.serve, "127.0.0.1", self.port))

    def down(self) -> None:
        self.run(self._set(refusing=True))

    def slow(self, seconds: float) -> None:
        self.run(self._set(delay=seconds))

    def up(self) -> None:
        self.run(self._set(refusing=False, delay=0.0))

    async def _set(self, *, refusing: bool | None = None, delay: float | None = None) -> None:
        if delay is not None:
            self.delay = delay
        if refusing is not None:
            self.refusing = refusing
        if self.refusing:
            for writer in list(self.writers):
                writer.transport.abort()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, upstream_writer}
        try:
            await asyncio.gather(
                self.pipe(reader, upstream_writer), self.pipe(upstream_reader, writer)
            )
        finally:
            self.writers -= {writer, upstream_writer}

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()  # the other direction ends with it

    async def _shutdown(self) -> None:
        await self._set(refusing=True)
        assert self.server is not None
        self.server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self.run(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def database_proxy(database_url: str) -> Iterator[DatabaseProxy]:
    """A proxy to the test database; request it before `cluster_factory` (it outlives them)."""
    parts = urlsplit(database_url)
    proxy = DatabaseProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


# --- the database down, then slow -----------------------------------------------


async def test_database_down_answers_unavailable_and_stores_nothing(
    database_proxy, cluster_factory, database_url, room
):
    cluster = cluster_factory(2, DATABASE_URL=database_proxy.url(database_url), **GENEROUS)
    pids = pids_of(cluster)
    sender = await cluster.connect("user10", worker=0, room=room)
    listener = await cluster.connect("user11", worker=1, room=room)
    token = await asyncio.to_thread(cluster.token, "user12")
    await sender.send({"type": "message.send", "body": "before", "client_id": "before"})
    assert (await sender.receive_type("message"))["id"] == 1
    assert (await listener.receive_type("message"))["id"] == 1

    await asyncio.to_thread(database_proxy.down)
    for client_id in ["down-1", "down-2", "down-3"]:
        await sender.send({"type": "message.send", "body": client_id, "client_id": client_id})
        error = await sender.receive_type("error")
        assert (error["code"], error["client_id"]) == ("unavailable", client_id), error
    # The socket stays open and served.
    await sender.send({"type": "ping"})
    assert await sender.receive_type("pong") == {"type": "pong"}
    status, report = await asyncio.to_thread(healthz, cluster.workers[0])
    assert (status, report["status"], report["db"], report["redis"]) == (
        503,
        "unavailable",
        "error",
        "ok",
    ), report
    # A new socket cannot be authenticated now: accepted, then "try again later".
    refused = await open_socket(cluster.workers[1], room, token)
    assert await close_code(refused) == 4013
    # Nothing half-stored: no row now, and no number used up (the resends get 2, 3, 4).
    assert [row[3] for row in await asyncio.to_thread(stored, database_url, room)] == ["before"]

    await asyncio.to_thread(database_proxy.up)
    for number, client_id in enumerate(["down-1", "down-2", "down-3"], start=2):
        await sender.send({"type": "message.send", "body": client_id, "client_id": client_id})
        ack = await sender.receive_type("message")
        assert (ack["id"], ack["client_id"], ack["body"]) == (number, client_id, client_id)
        seen = await listener.receive_type("message")
        assert (seen["id"], seen["body"], seen["client_id"]) == (number, client_id, None)
    # A further resend is the stored message again, to the sender only.
    await sender.send({"type": "message.send", "body": "down-1", "client_id": "down-1"})
    assert (await sender.receive_type("message"))["id"] == 2
    await sender.send({"type": "message.send", "body": "after", "client_id": "after"})
    assert (await sender.receive_type("message"))["id"] == 5
    assert (await listener.receive_type("message"))["id"] == 5
    newcomer = Client("user12", await open_socket(cluster.workers[1], room, token, after=0))
    assert (await newcomer.receive())["last_id"] == 5
    assert [(await newcomer.receive_type("message"))["id"] for _ in range(5)] == [1, 2, 3, 4, 5]

    assert [row[:1] + row[2:] for row in await asyncio.to_thread(stored, database_url, room)] == [
        (1, "before", "before"),
        (2, "down-1", "down-1"),
        (3, "down-2", "down-2"),
        (4, "down-3", "down-3"),
        (5, "after", "after"),
    ]
    for worker in cluster.workers:
        assert await asyncio.to_thread(healthz, worker) == (
            200,
            {"status": "ok", "db": "ok", "redis": "ok"},
        )
    assert_no_crash(cluster.workers, pids)
    # An outage answered by design is told once per worker, and its end with a count:
    # no ERROR, no traceback for each refused frame.
    log = cluster.workers[0].log()
    assert log.count("database unavailable, answering unavailable") == 1, log[-3000:]
    assert "3 answers were unavailable meanwhile" in log
    assert " ERROR " not in log and "Traceback" not in log


async def test_a_slow_database_delays_acknowledgements_but_keeps_their_order(
    database_proxy, cluster_factory, database_url, room
):
    cluster = cluster_factory(2, DATABASE_URL=database_proxy.url(database_url), **GENEROUS)
    pids = pids_of(cluster)
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2], count=9, window=3)
        for i in range(13, 16)
    ]
    delay = 0.02
    async with streaming(clients) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 3, 30, "acks before the slowdown")
        await asyncio.to_thread(database_proxy.slow, delay)
        slow_from = time.monotonic()

        def slowed(client: Streamer) -> list[Answer]:
            return [answer for answer in client.answers if answer.sent_at >= slow_from]

        await until(lambda: all(len(slowed(c)) >= 3 for c in clients), 30, "sends while slow")
        slow_answers = [answer for client in clients for answer in slowed(client)]
        await asyncio.to_thread(database_proxy.up)
        await sending
        await converge(clients, total=27)

    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )
    for client in clients:
        # Later, never refused: no error, no close, one attempt per message.
        assert {answer.outcome for answer in client.answers} == {"ack"}
        assert (client.connections, client.closes) == (1, [])
        # Three sends in flight at a time, acknowledged in the order they were sent.
        assert [client_id for client_id, _ in client.ack_order] == client.plan
        numbers = [number for _, number in client.ack_order]
        assert numbers == sorted(numbers)
    # Each slowed send waited at least one delayed round trip to the database.
    assert min(a.answered_at - a.sent_at for a in slow_answers) >= 2 * delay
    assert_no_crash(cluster.workers, pids)
