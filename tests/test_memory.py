"""The in-memory channel layer of the fast tests (chat/platform/memory.py).

It keeps the promises the sockets rely on from the Redis layer: a group send
reaches each member's inbox once, in order, as a copy; an inbox past capacity
drops its oldest message, logged; a stopped consumer's channel keeps nothing;
and with no shards the epoch watch never runs.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from chat.platform.memory import MemoryChannelLayer
from chat.sockets.watcher import epoch_watch_join


@pytest.fixture
def layer():
    return MemoryChannelLayer(capacity=2)


async def test_a_group_send_reaches_each_members_inbox_once_in_order_as_a_copy(layer):
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add("room-1", channel)
    message = {"type": "chat.message", "id": 1}
    await layer.group_send("room-1", message)
    await layer.group_send("room-1", {"type": "chat.message", "id": 2})
    message["id"] = 99  # the sender's dict stays its own, as through Redis
    for channel in (first, second):
        inbox = layer.inbox(channel)
        assert [(await inbox.get())["id"], (await layer.receive(channel))["id"]] == [1, 2]
        assert not inbox.messages


async def test_an_inbox_past_capacity_drops_its_oldest_message_and_says_so(layer, caplog):
    caplog.set_level(logging.WARNING, logger="chat.platform.memory")
    stuck = await layer.new_channel()
    await layer.group_add("room-1", stuck)
    for number in range(1, 6):
        await layer.group_send("room-1", {"type": "chat.message", "id": number})
    assert layer.overflowed == 3
    assert caplog.text.count(f"inbox of {stuck} over capacity") == 3
    assert [(await layer.receive(stuck))["id"] for _ in range(2)] == [4, 5]


async def test_a_stopped_consumers_channel_keeps_nothing(layer):
    closed = await layer.new_channel()
    await layer.group_add("room-1", closed)
    waiting = asyncio.ensure_future(layer.receive(closed))
    await asyncio.sleep(0)
    waiting.cancel()  # how a consumer stops: its receive is cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await layer.group_send("room-1", {"type": "chat.message", "id": 1})
    await layer.send(closed, {"type": "chat.message", "id": 2})
    assert closed not in layer.inboxes
    assert closed not in layer.channels


async def test_the_epoch_watch_of_a_layer_without_shards_never_runs(layer):
    class Consumer:
        presence_entry = None

    consumer = Consumer()
    watch = await epoch_watch_join(layer, consumer)
    assert watch.task is None
    assert consumer in watch.consumers
    # Every socket of the loop shares it.
    assert await epoch_watch_join(layer, Consumer()) is watch
