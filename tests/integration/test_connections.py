"""PostgreSQL connections of a real worker: two kept for its sockets (the database thread's,
and the event loop's for plain messages: chat/actions/plain.py), none left by requests.

The sockets' database calls all run on one thread per worker and keep its
connection; HTTP requests each run on a thread of their own and must close
theirs, or a worker would hold one connection per request it ever served.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from urllib.parse import urlsplit

import psycopg

from tests.integration.conftest import Worker


def backends(database_url: str, worker: Worker) -> set[int]:
    """Backend pids of the database's connections, other than this test's own."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return {row[0] for row in rows}


def get(worker: Worker, path: str) -> int:
    with urllib.request.urlopen(worker.url + path, timeout=15) as response:
        return int(response.status)


async def eventually_equal(read, expected, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    value = await asyncio.to_thread(read)
    while value != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await asyncio.to_thread(read)
    return value


async def test_requests_leave_no_connection_and_sockets_keep_two(
    cluster_factory, database_url, room
):
    cluster = cluster_factory(1)
    worker = cluster.workers[0]
    idle = await asyncio.to_thread(backends, database_url, worker)
    for _ in range(30):
        assert await asyncio.to_thread(get, worker, "/healthz") == 200
    # Each request closed its connection when it finished.
    assert await eventually_equal(lambda: backends(database_url, worker), idle) == idle

    sender = await cluster.connect("user10", worker=0, room=room)
    for number in range(1, 16):
        await sender.send({"type": "message.send", "body": f"m{number}", "client_id": f"c{number}"})
        assert (await sender.receive_type("message"))["id"] == number
    # The socket's reads on the database thread's connection, fifteen messages over the
    # event loop's: both still open, and no more.
    kept = await asyncio.to_thread(backends, database_url, worker)
    assert len(kept - idle) == 2, (idle, kept)
    await sender.send({"type": "message.send", "body": "again", "client_id": "c16"})
    assert (await sender.receive_type("message"))["id"] == 16
    assert await asyncio.to_thread(backends, database_url, worker) == kept
    await sender.close()
