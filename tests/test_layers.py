"""The channel layer against real Redis: what it refuses over capacity is counted and logged."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from chat.layers import ChatChannelLayer
from tests.settings import REDIS_URL


@pytest.fixture
async def layer():
    layer = ChatChannelLayer(
        hosts=[{"address": REDIS_URL}], prefix=f"test-layer-{uuid.uuid4().hex[:8]}", capacity=2
    )
    yield layer
    await layer.flush()
    await layer.close_pools()


async def test_group_messages_over_capacity_are_counted_and_logged(layer, caplog):
    caplog.set_level(logging.WARNING, logger="chat.layers")
    channel = await layer.new_channel()
    await layer.group_add("room-1", channel)
    for number in range(1, 7):
        await layer.group_send("room-1", {"type": "chat.message", "id": number})
    # The process queue holds two; four were refused, each counted and logged.
    assert layer.dropped == 4
    assert "channel layer dropped 1 deliveries over capacity in group room-1 (4 in all" in (
        caplog.text
    )
    received = [(await asyncio.wait_for(layer.receive(channel), 5))["id"] for _ in range(2)]
    assert received == [1, 2]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)


async def test_group_send_within_capacity_drops_nothing(layer, caplog):
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room-1", first)
    await layer.group_add("room-1", second)
    await layer.group_send("room-1", {"type": "chat.message", "id": 1})
    assert (await layer.receive(first))["id"] == 1
    assert (await layer.receive(second))["id"] == 1
    assert layer.dropped == 0
    assert "dropped" not in caplog.text


async def test_group_send_to_an_empty_group(layer):
    await layer.group_send("room-1", {"type": "chat.message", "id": 1})
    assert layer.dropped == 0


async def test_more_calls_at_once_than_pooled_connections_wait_their_turn():
    """A thousand sockets closing together must not be refused by the pool."""
    layer = ChatChannelLayer(
        hosts=[{"address": REDIS_URL, "max_connections": 3}],
        prefix=f"test-layer-{uuid.uuid4().hex[:8]}",
    )
    try:
        channels = [f"specific.x!{number}" for number in range(60)]
        await asyncio.gather(*(layer.group_add("room-1", channel) for channel in channels))
        members = await layer.connection(0).zcard(layer._group_key("room-1"))
        assert members == 60
    finally:
        await layer.flush()
        await layer.close_pools()
