"""chat.sockets.batcher.Batcher: a broadcast room's order at a worker's feed, a tick at a time,
with its I/O faked (no Redis, no database, no event loop's timers; tests/test_feeds.py
drives the real feed).

Events are chat.message events cut down to what the order reads: an id and a room.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from chat.sockets.batcher import Batcher

TICK = 0.05
HOLE_WAIT = 0.2


def event(number: int, source: str = "live") -> dict[str, Any]:
    return {"type": "chat.message", "id": number, "room_id": 7, "source": source}


@dataclass
class FakeTimer:
    delay: float
    call: Callable[[], Awaitable[None]]
    cancelled: bool = False
    fired: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Worker:
    """What the feed's sockets were handed, what the database holds, the timers asked for."""

    batches: list[tuple[int, int, list[int]]] = field(default_factory=list)
    handed: list[int] = field(default_factory=list)
    database: set[int] = field(default_factory=set)
    reads: list[tuple[int, int, int]] = field(default_factory=list)
    timers: list[FakeTimer] = field(default_factory=list)
    read_fails: bool = False
    now: float = 100.0

    async def send(self, first: int, last: int, batch: list[dict[str, Any]]) -> None:
        self.batches.append((first, last, [e["id"] for e in batch]))

    def hand_out(self, message: dict[str, Any]) -> None:
        self.handed.append(message["id"])

    async def read_missing(
        self, room_id: int, after: int, before: int
    ) -> list[dict[str, Any]] | None:
        self.reads.append((room_id, after, before))
        if self.read_fails:
            return None
        return [event(n, "db") for n in sorted(self.database) if after < n < before]

    def later(self, delay: float, call: Callable[[], Awaitable[None]]) -> FakeTimer:
        timer = FakeTimer(delay, call)
        self.timers.append(timer)
        return timer

    def clock(self) -> float:
        return self.now

    def live_timers(self) -> list[FakeTimer]:
        return [timer for timer in self.timers if not (timer.cancelled or timer.fired)]

    async def fire(self, delay: float) -> None:
        """The one live timer of `delay` fires (the tick's, or the hole's)."""
        [timer] = [timer for timer in self.live_timers() if timer.delay == delay]
        timer.fired = True
        await timer.call()

    async def tick(self) -> None:
        """The tick's timer fires (it is never as long as a hole's wait)."""
        [timer] = [timer for timer in self.live_timers() if timer.delay < HOLE_WAIT]
        timer.fired = True
        await timer.call()


@pytest.fixture(autouse=True)
def _flush_layer() -> None:
    """No channel layer here: stands in for the suite's flush of it."""


def batcher(*, stored: int = 0) -> tuple[Batcher, Worker]:
    worker = Worker(database=set(range(1, stored + 1)))
    return Batcher(
        send=worker.send,
        hand_out=worker.hand_out,
        read_missing=worker.read_missing,
        later=worker.later,
        tick=TICK,
        hole_wait=HOLE_WAIT,
        clock=worker.clock,
    ), worker


async def test_the_first_message_goes_at_once_and_a_ticks_messages_go_as_one_ordered_batch():
    order, worker = batcher()
    order.arrived(event(1))
    await worker.fire(0.0)  # the feed was idle: at once
    worker.now += 0.01
    for number in (3, 2, 4):
        order.arrived(event(number))
    [tick] = worker.live_timers()
    assert tick.delay == pytest.approx(TICK - 0.01)  # counted from the end of the last batch
    await worker.fire(tick.delay)
    assert worker.batches == [(1, 1, [1]), (2, 4, [2, 3, 4])]
    assert worker.reads == [] and worker.handed == []


async def test_the_order_starts_at_the_lowest_of_the_first_tick():
    order, worker = batcher()
    order.arrived(event(6))
    order.arrived(event(5))
    await worker.tick()
    assert worker.batches == [(5, 6, [5, 6])]


async def test_a_hole_waits_then_is_read_once_and_the_held_follow_in_the_same_batch():
    order, worker = batcher(stored=6)
    order.arrived(event(1))
    await worker.tick()
    order.arrived(event(4))
    order.arrived(event(6))
    await worker.tick()
    assert worker.batches == [(1, 1, [1])]  # 4 and 6 wait for 2..3
    order.arrived(event(2))  # a moment behind: no read needed for it
    await worker.tick()
    assert worker.batches[-1] == (2, 2, [2])
    await worker.fire(HOLE_WAIT)
    assert worker.reads == [(7, 2, 4)]
    assert worker.batches[-1] == (3, 4, [3, 4])  # 3 as read, 4 as held
    await worker.fire(HOLE_WAIT)
    assert worker.batches[-1] == (5, 6, [5, 6])
    assert worker.live_timers() == []


async def test_a_deleted_message_in_a_hole_is_covered_by_the_batch_without_an_event():
    order, worker = batcher(stored=3)
    worker.database.discard(2)
    order.arrived(event(1))
    await worker.tick()
    order.arrived(event(3))
    await worker.tick()
    await worker.fire(HOLE_WAIT)
    assert worker.batches == [(1, 1, [1]), (2, 3, [3])]


async def test_a_hole_that_cannot_be_read_is_left_to_each_socket_and_the_order_goes_on():
    order, worker = batcher(stored=6)
    order.arrived(event(1))
    await worker.tick()
    order.arrived(event(4))
    order.arrived(event(3))
    await worker.tick()
    worker.read_fails = True
    await worker.fire(HOLE_WAIT)
    # 3 and 4 go to each socket as they are: each finds the hole (2) itself.
    assert worker.handed == [3, 4]
    assert worker.batches == [(1, 1, [1])]
    order.arrived(event(5))
    order.arrived(event(4))  # a repeat of one handed out
    await worker.tick()
    assert worker.batches[-1] == (5, 5, [5])
    assert worker.handed == [3, 4, 4]


async def test_a_repeat_of_a_message_handed_out_goes_to_each_socket_as_it_is():
    order, worker = batcher()
    order.arrived(event(1))
    await worker.tick()
    order.arrived(event(1))
    assert worker.handed == [1] and worker.live_timers() == []


async def test_another_event_puts_the_messages_before_it_out_first():
    """Feed.run flushes before handing out any other event of the room."""
    order, worker = batcher()
    order.arrived(event(1))
    order.arrived(event(2))
    await order.flush()
    assert worker.batches == [(1, 2, [1, 2])]
    await worker.tick()  # when it comes, it finds nothing left
    assert worker.batches == [(1, 2, [1, 2])]


async def test_closing_stops_the_tick_and_the_hole_wait():
    order, worker = batcher()
    order.arrived(event(1))
    await worker.tick()
    order.arrived(event(3))
    await worker.tick()
    order.arrived(event(4))
    order.close()
    assert worker.live_timers() == []
