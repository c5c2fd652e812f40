"""The channel layer against real Redis.

What it refuses over capacity is counted and logged; one reader per process
hands each message to the inbox of every channel it names; a closed channel
keeps nothing; a lost Redis reaches every consumer as an event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from chat.platform.layers import ChatChannelLayer, Inbox, Local
from tests.servers import PrivateRedis
from tests.settings import REDIS_URL


@pytest.fixture
def layer(make_layer):
    return make_layer(capacity=2)


@pytest.mark.redis
async def test_group_messages_over_capacity_are_counted_and_logged(layer, caplog):
    caplog.set_level(logging.WARNING, logger="chat.platform.layers")
    # A channel of this process whose consumer has not started: nothing reads
    # the process queue yet, as in a process too busy to read it.
    channel = f"{layer.process_queue}{uuid.uuid4().hex}"
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


@pytest.mark.redis
async def test_a_consumer_that_stops_reading_keeps_its_newest_messages(layer, caplog):
    caplog.set_level(logging.WARNING, logger="chat.platform.layers")
    reading, stuck = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room-1", reading)
    await layer.group_add("room-1", stuck)
    for number in range(1, 7):
        await layer.group_send("room-1", {"type": "chat.message", "id": number})
        # The process reads its queue while `stuck` reads nothing.
        assert (await asyncio.wait_for(layer.receive(reading), 5))["id"] == number
    # Its inbox holds `capacity` (2) messages: the four oldest went, logged.
    assert layer.dropped == 0
    assert caplog.text.count(f"inbox of {stuck} over capacity") == 4
    received = [(await asyncio.wait_for(layer.receive(stuck), 5))["id"] for _ in range(2)]
    assert received == [5, 6]


@pytest.mark.redis
async def test_messages_for_a_closed_channel_are_not_kept(layer):
    closed, open_ = await layer.new_channel(), await layer.new_channel()
    for channel in (closed, open_):
        await layer.group_add("room-1", channel)
    waiting = asyncio.ensure_future(layer.receive(closed))
    await asyncio.sleep(0.05)
    waiting.cancel()  # how a consumer stops: its receive is cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiting
    receiver = layer.receiver()
    for number in range(1, 4):
        await layer.group_send("room-1", {"type": "chat.message", "id": number})
        assert (await asyncio.wait_for(layer.receive(open_), 5))["id"] == number
    assert closed not in receiver.inboxes
    assert receiver.unclaimed == 3


@pytest.mark.redis
async def test_one_send_reaches_each_channel_of_the_process_once_in_order(layer):
    layer.capacity = 1000
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("room-1", channel)
    for number in range(1, 21):
        await layer.group_send("room-1", {"type": "chat.message", "id": number})
    await layer.send(channels[7], {"type": "chat.direct"})
    for index, channel in enumerate(channels):
        got = [(await asyncio.wait_for(layer.receive(channel), 5)) for _ in range(20)]
        assert [event["id"] for event in got] == list(range(1, 21))
        if index == 7:
            assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "chat.direct"}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.01)


@pytest.mark.redis
async def test_group_send_within_capacity_drops_nothing(layer, caplog):
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room-1", first)
    await layer.group_add("room-1", second)
    await layer.group_send("room-1", {"type": "chat.message", "id": 1})
    assert (await layer.receive(first))["id"] == 1
    assert (await layer.receive(second))["id"] == 1
    assert layer.dropped == 0
    assert "dropped" not in caplog.text


@pytest.mark.redis
async def test_group_send_to_an_empty_group(layer):
    await layer.group_send("room-1", {"type": "chat.message", "id": 1})
    assert layer.dropped == 0


@pytest.mark.redis
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


@pytest.mark.redis
async def test_a_lost_redis_is_an_event_for_every_consumer(tmp_path):
    """Each waiting consumer gets chat.layer_lost naming the shard (it closes with 4012 if
    its groups live there), once a failure."""
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    layer = ChatChannelLayer(
        hosts=[{"address": redis_server.url, "socket_timeout": None}],
        prefix=f"test-layer-{uuid.uuid4().hex[:8]}",
    )
    try:
        channels = [await layer.new_channel() for _ in range(3)]
        waiting = [asyncio.ensure_future(layer.receive(channel)) for channel in channels]
        await asyncio.sleep(0.2)  # the reader is blocked in BZMPOP
        redis_server.stop()
        events = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert events == [{"type": "chat.layer_lost", "shard": 0}] * 3
        # While Redis stays down, the inboxes hold one such event each, not one per retry.
        await asyncio.sleep(0.5)
        assert all(len(layer.receiver().inboxes[c].messages) <= 1 for c in channels)
    finally:
        await layer.close_pools()
        redis_server.stop()


async def test_a_timer_comes_back_through_the_inbox_in_turn_and_is_never_dropped():
    """Inbox.later: a socket's own timer, queued behind the messages before it; over
    capacity the oldest layer message goes, never the timer; a cancelled one is not made."""
    inbox, calls = Inbox(), []

    async def called(name: str) -> None:
        calls.append(name)

    inbox.later(0, lambda: called("kept"))
    cancelled = inbox.later(0, lambda: called("cancelled"))
    await asyncio.sleep(0.01)  # both fired into the inbox
    cancelled.cancel()
    assert not inbox.offer({"type": "chat.message", "id": 1}, capacity=2)  # timers only
    assert inbox.offer({"type": "chat.message", "id": 2}, capacity=2)  # 1 goes
    order = []
    while inbox.messages:
        item = await inbox.get()
        if isinstance(item, Local):
            await item.run()
            order.append("timer")
        else:
            order.append(item["id"])
    assert order == ["timer", "timer", 2] and calls == ["kept"]
