"""A dead worker leaves every group (chat/platform/workers.py), on the real Redis."""

from __future__ import annotations

import time

import pytest
from channels.layers import get_channel_layer

from chat.platform.layers import ChatChannelLayer
from chat.platform.redis import keys
from chat.platform.workers import worker_heartbeat, worker_name, workers_reap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


async def test_a_dead_workers_channels_leave_every_group_and_its_queue_goes(settings):
    settings.CHAT_HEARTBEAT_SECONDS = 1
    layer = get_channel_layer()
    connection = layer.connection(0)
    dead, alive = "deadbeef" * 4, worker_name(layer)
    dead_channels = [f"specific.{dead}!{n}" for n in range(3)]
    for group in ("room-1", "room-2", "user-7"):
        for channel in dead_channels[:2]:
            await layer.group_add(group, channel)
        await layer.group_add(group, f"specific.{alive}!mine")
    await connection.zadd(layer.prefix + f"specific.{dead}!", {b"queued": time.time()})
    # The dead one last beat 4 s ago (three heartbeats of 1 s are the limit); we beat now.
    await connection.zadd(keys.workers(), {dead: time.time() - 4})
    assert not await worker_heartbeat(layer)

    assert await workers_reap(layer) == {dead: 6}
    for group in ("room-1", "room-2", "user-7"):
        members = await connection.zrange(layer.prefix + f":group:{group}", 0, -1)
        assert members == [f"specific.{alive}!mine".encode()]
    assert not await connection.exists(layer.prefix + f"specific.{dead}!")
    assert await connection.zscore(keys.workers(), dead) is None
    assert await connection.zscore(keys.workers(), alive) is not None
    # Reaped once: another look finds nothing more to do.
    assert await workers_reap(layer) == {}


async def test_a_live_worker_is_never_reaped(settings):
    settings.CHAT_HEARTBEAT_SECONDS = 1
    layer = get_channel_layer()
    quiet = "0123456789abcdef" * 2
    await layer.group_add("room-1", f"specific.{quiet}!x")
    await layer.connection(0).zadd(keys.workers(), {quiet: time.time() - 2})
    assert await workers_reap(layer) == {}
    members = await layer.connection(0).zrange(layer.prefix + ":group:room-1", 0, -1)
    assert members == [f"specific.{quiet}!x".encode()]


async def test_a_worker_taken_for_dead_learns_it_on_its_next_heartbeat(settings):
    """Its sockets missed what was sent meanwhile: the watcher then closes them (4012)."""
    settings.CHAT_HEARTBEAT_SECONDS = 1
    layer = get_channel_layer()
    assert not await worker_heartbeat(layer)
    await layer.connection(0).zadd(keys.workers(), {worker_name(layer): time.time() - 10})
    # Another worker: a layer of its own on the same Redis.
    survivor = ChatChannelLayer(hosts=layer.hosts, prefix=layer.prefix)
    try:
        assert worker_name(layer) in await workers_reap(survivor)
    finally:
        await survivor.close_pools()
    assert await worker_heartbeat(layer)
    assert not await worker_heartbeat(layer)  # told once
