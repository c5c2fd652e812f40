"""Load on real daphne workers: a burst over a tiny layer capacity still reaches every
socket, in order, once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import Client
from tests.integration.load_helpers import LONG_TOKENS, eventually, open_client, room_id, tokens_for
from tests.integration.load_helpers import token_cache as token_cache  # a fixture

pytestmark = pytest.mark.integration


DROP_LINE = re.compile(
    r"WARNING chat\.platform\.layers channel layer dropped (\d+) deliveries over capacity"
    r" in group (\S+) \((\d+) in all since start\)"
)


def last_number(database_url: str, slug: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT last_message_number FROM chat_room WHERE slug = %s", (slug,)
        ).fetchone()
    assert row is not None
    return int(row[0])


# --- 1. a burst beyond the layer's capacity ----------------------------------


class Collector:
    """Reads one socket: its `message` frames in arrival order, and any `error`."""

    def __init__(self, client: Client, label: str) -> None:
        self.client = client
        self.label = label
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []

    async def until_id(self, last: int) -> None:
        while not self.messages or self.messages[-1]["id"] < last:
            frame = json.loads(await self.client.connection.recv())
            if frame["type"] == "message":
                self.messages.append(frame)
            elif frame["type"] == "error":
                self.errors.append(frame)

    async def until_pong(self) -> None:
        """Whatever else arrives before the answer to a ping is recorded too."""
        await self.client.send({"type": "ping"})
        while True:
            frame = json.loads(await asyncio.wait_for(self.client.connection.recv(), 10))
            if frame["type"] == "pong":
                return
            if frame["type"] == "message":
                self.messages.append(frame)
            elif frame["type"] == "error":
                self.errors.append(frame)

    def ids(self) -> list[int]:
        return [frame["id"] for frame in self.messages]

    def summary(self, total: int) -> str:
        ids = self.ids()
        missing = sorted(set(range(1, total + 1)) - set(ids))
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        backwards = [(a, b) for a, b in itertools.pairwise(ids) if b <= a]
        return (
            f"{self.label}: {len(ids)} frames, last {ids[-1] if ids else None},"
            f" missing {missing[:20]}{'...' if len(missing) > 20 else ''},"
            f" repeated {repeated[:20]}, out of order {backwards[:5]}"
        )


async def test_a_burst_over_capacity_reaches_every_socket_in_order(
    cluster_factory, users, room, database_url, token_cache
):
    # A layer queue of 5 messages per worker, and no rate limit in the way.
    cluster = cluster_factory(
        2, **LONG_TOKENS, CHAT_LAYER_CAPACITY="5", CHAT_RATE_LIMIT="10000/10s"
    )
    capacity, per_user = 5, 10
    total = per_user * len(users)
    tokens = await tokens_for(cluster, users, token_cache)
    # Every user on both workers: 40 sockets in the room.
    pairs = await asyncio.gather(
        *(
            asyncio.gather(*(open_client(w, room, name, tokens[name]) for w in cluster.workers))
            for name in users
        )
    )
    sockets = {
        name: [
            Collector(client, f"{name}@{worker.name}")
            for client, worker in zip(pair, cluster.workers, strict=True)
        ]
        for name, pair in zip(users, pairs, strict=True)
    }
    collectors = [collector for pair in sockets.values() for collector in pair]
    # Ten senders on each worker.
    senders = {name: sockets[name][index % 2] for index, name in enumerate(users)}
    start = asyncio.Event()

    async def burst(name: str) -> None:
        frames = [
            json.dumps({"type": "message.send", "body": f"{name} {n}", "client_id": f"{name}-{n}"})
            for n in range(per_user)
        ]
        await start.wait()
        for frame in frames:
            await senders[name].client.connection.send(frame)

    readers = [asyncio.create_task(c.until_id(total)) for c in collectors]
    writers = [asyncio.create_task(burst(name)) for name in users]
    # Whether a queue overflows depends on how fast its worker drains it, so one
    # worker stalls (as under a GC pause or a starved CPU) while the other stores
    # four times its capacity: the layer must have refused deliveries to it.
    stalled = cluster.workers[1]
    assert stalled.process is not None
    stalled.process.send_signal(signal.SIGSTOP)
    try:
        start.set()

        async def overflowed() -> bool:
            return await asyncio.to_thread(last_number, database_url, room) >= 4 * capacity

        assert await eventually(overflowed, 20), "the running worker stored no messages"
    finally:
        stalled.process.send_signal(signal.SIGCONT)
    await asyncio.gather(*writers)
    # Time enough for the stalled worker to catch up and the layer to redeliver.
    done, pending = await asyncio.wait(readers, timeout=20)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()  # a socket closed by the server fails here
    assert not pending, "sockets stalled before the last message:\n" + "\n".join(
        c.summary(total) for c, task in zip(collectors, readers, strict=True) if task in pending
    )
    # Anything sent after the last message (a duplicate) arrives before the pong.
    await asyncio.gather(*(c.until_pong() for c in collectors))

    expected = list(range(1, total + 1))
    wrong = [c.summary(total) for c in collectors if c.ids() != expected]
    assert not wrong, "\n".join(wrong)
    assert not [c.errors for c in collectors if c.errors]
    for name, sender in senders.items():
        acked = {m["client_id"] for m in sender.messages if m["user"] == name}
        assert acked == {f"{name}-{n}" for n in range(per_user)}, name
        # The author's client_id on both of its sockets, nobody else's.
        for collector in sockets[name]:
            assert all(
                (m["client_id"] is not None) == (m["user"] == name) for m in collector.messages
            )

    # The running worker refused deliveries over capacity, and said so.
    group = f"room-{room_id(database_url, room)}"
    drops: list[tuple[int, int]] = []

    async def drops_logged() -> bool:
        drops[:] = [
            (int(count), int(running))
            for count, in_group, running in DROP_LINE.findall(cluster.workers[0].log())
            if in_group == group
        ]
        return bool(drops)

    assert await eventually(drops_logged, 5), (
        "no `channel layer dropped` WARNING from chat.platform.layers"
    )
    # The running total is the sum of the reports before it.
    assert drops[-1][1] == sum(count for count, _ in drops), drops
