"""What the load-and-fault tests (tests/integration/test_load_faults_*.py) share: tokens
fetched once, clients, and a look at the Redis keys a room's sockets occupy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import psycopg
import pytest
import websockets

from tests.integration.conftest import Client, Cluster, Worker

# Each user's token is fetched once and shared by the tests (see token_cache):
# it must outlive the whole module, even on a slow machine.
LONG_TOKENS = {"CHAT_TOKEN_TTL": "3600"}


# --- helpers ----------------------------------------------------------------


def room_id(database_url: str, slug: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute("SELECT id FROM chat_room WHERE slug = %s", (slug,)).fetchone()
    assert row is not None
    return int(row[0])


def ws_url(worker: Worker, slug: str, token: str) -> str:
    return worker.url.replace("http", "ws", 1) + f"/ws/rooms/{slug}/?token={token}"


@pytest.fixture(scope="module")
def token_cache() -> dict[str, str]:
    """Tokens by username, shared by this module's clusters (one database, one secret)."""
    return {}


async def tokens_for(cluster: Cluster, names: list[str], cache: dict[str, str]) -> dict[str, str]:
    """One token per user, fetched once (password hashing is slow) from all workers at once."""
    missing = [name for name in names if name not in cache]
    fetched = await asyncio.gather(
        *(
            asyncio.to_thread(cluster.token, name, index % len(cluster.workers))
            for index, name in enumerate(missing)
        )
    )
    cache.update(zip(missing, fetched, strict=True))
    return {name: cache[name] for name in names}


async def open_client(worker: Worker, slug: str, username: str, token: str) -> Client:
    client = Client(username, await websockets.connect(ws_url(worker, slug, token)))
    client.welcome = await client.receive_type("welcome")
    return client


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True
