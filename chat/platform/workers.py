"""The live workers, and what is done for one that stopped without a goodbye.

Every worker (one channel layer of one process: its client prefix) writes
its heartbeat into a registry every CHAT_HEARTBEAT_SECONDS. A worker killed
with SIGKILL stays in every group it joined: each broadcast to its rooms and
its users would still queue a copy for it, until its queue is full and every
broadcast logs a refusal over capacity. So the survivors look at the registry
on their heartbeat; one whose heartbeat is older than three of them is taken
for dead, and one survivor (the first to claim it) removes its channels from
every group on every shard, deletes its queues, and leaves it a mark.

A worker that was only slow (its loop stalled for three heartbeats) finds
that mark on its next heartbeat: its sockets have missed whatever was sent
to them meanwhile, so it closes them all with 4012, and they resume.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

from chat.platform.redis import keys, pools, scripts

logger = logging.getLogger(__name__)

# Group keys taken out of SCAN and given to one script at a time.
REAP_BATCH = 500


def dead_after() -> float:
    """Seconds without a heartbeat after which a worker is taken for dead."""
    return 3 * settings.CHAT_HEARTBEAT_SECONDS


def worker_name(layer: Any) -> str:
    """A worker's name: its layer's client prefix, which every channel of it carries."""
    return str(layer.client_prefix)


async def worker_heartbeat(layer: Any) -> bool:
    """Say this worker lives. True if it had been taken for dead and reaped meanwhile."""
    me = worker_name(layer)
    connection = pools.for_name(layer, keys.workers())
    reaped = await pools.bounded(
        scripts.WORKER_HEARTBEAT.run(
            connection, 2, keys.workers(), keys.reaped(me), me, time.time()
        )
    )
    return bool(reaped)


async def workers_reap(layer: Any) -> dict[str, int]:
    """Take every dead worker's channels out of every group; {worker: channels removed}."""
    me = worker_name(layer)
    connection = pools.for_name(layer, keys.workers())
    cutoff = time.time() - dead_after()
    dead = [
        name.decode() if isinstance(name, bytes) else str(name)
        for name in await pools.bounded(connection.zrangebyscore(keys.workers(), "-inf", cutoff))
    ]
    reaped: dict[str, int] = {}
    for worker in dead:
        if worker == me:
            continue
        # One survivor reaps; the claim outlives a reaping that fails half way.
        claimed = await pools.bounded(
            connection.set(keys.reaping(worker), me, nx=True, ex=int(dead_after()))
        )
        if not claimed:
            continue
        removed = 0
        for shard in range(layer.ring_size):
            removed += await _groups_reap(layer, shard, worker)
        # Its queues (one on every shard) hold nothing anyone will read.
        for shard in range(layer.ring_size):
            queue = layer.prefix + f"specific.{worker}!"
            await pools.bounded(layer.connection(shard).delete(queue))
        pipe = connection.pipeline(transaction=False)
        pipe.zrem(keys.workers(), worker)
        pipe.set(keys.reaped(worker), me, ex=86400)
        await pools.bounded(pipe.execute())
        reaped[worker] = removed
        logger.warning(
            "worker %s sent no heartbeat for %.0f s: took its %d channels out of every group",
            worker,
            dead_after(),
            removed,
        )
    return reaped


async def _groups_reap(layer: Any, shard: int, worker: str) -> int:
    """Remove `worker`'s channels from every group key of one shard; how many."""
    connection = layer.connection(shard)
    pattern = f"{layer.prefix}:group:*"
    removed, cursor = 0, 0
    while True:
        cursor, found = await pools.bounded(
            connection.scan(cursor, match=pattern, count=REAP_BATCH)
        )
        if found:
            removed += int(
                await pools.bounded(
                    scripts.REAP_GROUPS.run(connection, len(found), *found, f"specific.{worker}!")
                )
            )
        if int(cursor) == 0:
            return removed
