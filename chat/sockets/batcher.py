"""A broadcast room's messages for one worker's sockets: in order, a tick at a time.

The rules of a worker's feed (chat/sockets/feeds.py) for a broadcast room, with
its I/O injected: tested on fakes in tests/test_feed_order.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat.sockets.sequence import Sequence, Timer

# A chat.message event.
Event = dict[str, Any]


class Batcher:
    """A broadcast room's messages for one worker's sockets: in order, a tick at a time.

    Messages that arrive within a tick go into the room's order together, at
    the tick; the ones that follow on from the last handed out go out as one
    batch. One older than the order (a repeat, or one from before the feed)
    goes to each socket as it is, to place or drop by its own order.

    Its I/O is injected, so that its rules are tested on fakes: `send(first,
    last, events)` hands out messages `first`..`last` as one batch (those
    absent were deleted); `hand_out(event)` gives an event to every socket as
    it is; `read_missing(room_id, after, before)` reads the stored messages
    strictly between as events, or None when it could not; `later(delay,
    call)` makes `call()` after `delay`, in turn with the feed's other events;
    `clock()` is monotonic time.
    """

    def __init__(
        self,
        *,
        send: Callable[[int, int, list[Event]], Awaitable[None]],
        hand_out: Callable[[Event], None],
        read_missing: Callable[[int, int, int], Awaitable[list[Event] | None]],
        later: Callable[[float, Callable[[], Awaitable[None]]], Timer],
        tick: float,
        hole_wait: float,
        clock: Callable[[], float],
    ) -> None:
        self.send = send
        self.hand_out = hand_out
        self.read_missing = read_missing
        self.later = later
        self.tick = tick
        self.hole_wait = hole_wait
        self.clock = clock
        # What arrived since the last tick, by id; the order (None before the first message).
        self.arrivals: dict[int, Event] = {}
        self.sequence: Sequence[Event] | None = None
        self.room_id = 0
        self.tick_timer: Timer | None = None
        self.handed_at = -1e9  # when the last batch was handed out (clock)

    def arrived(self, event: Event) -> None:
        number = event["id"]
        if self.sequence is not None and number <= self.sequence.last:
            # Behind what was handed out: older than the feed, or a repeat. Each
            # socket places it, or drops it, by its own order.
            self.hand_out(event)
            return
        self.room_id = event["room_id"]
        self.arrivals[number] = event
        if self.tick_timer is None:
            # A tick after the last batch; at once if that was longer ago. Any
            # message already queued behind this one still comes first.
            wait = self.handed_at + self.tick - self.clock()
            self.tick_timer = self.later(max(0.0, wait), self.ticked)

    async def ticked(self) -> None:
        self.tick_timer = None
        await self.flush()

    async def flush(self) -> None:
        """Put what arrived into the order: what follows on goes out now, as one batch;
        the ones after a hole wait for it (CHAT_HOLE_WAIT at most)."""
        if not self.arrivals:
            return
        arrivals, self.arrivals = self.arrivals, {}
        if self.sequence is None:
            self.sequence = self.order(last=min(arrivals) - 1)
        await self.sequence.arrived(*arrivals.items())

    def order(self, *, last: int) -> Sequence[Event]:
        sequence: Sequence[Event] = Sequence(
            pass_on=self.pass_on,
            read_between=self.read_between,
            schedule=lambda delay: self.later(delay, sequence.hole_expired),
            give_up=self.gave_up,
            hole_wait=self.hole_wait,
            last=last,
        )
        return sequence

    async def pass_on(self, first: int, last: int, run: list[tuple[int, Event]]) -> None:
        await self.send(first, last, [event for _, event in run])
        self.handed_at = self.clock()

    async def read_between(self, after: int, before: int) -> list[tuple[int, Event]] | None:
        """The hole, read once for the worker."""
        missing = await self.read_missing(self.room_id, after, before)
        return None if missing is None else [(event["id"], event) for event in missing]

    async def gave_up(self, held: list[tuple[int, Event]]) -> None:
        """The hole could not be read: each socket finds it itself, and closes (4013) if
        it cannot read it either. The order goes on after what was held."""
        assert self.sequence is not None
        last = held[-1][0] if held else self.sequence.last
        for _, event in held:
            self.hand_out(event)
        self.sequence = self.order(last=last)

    def close(self) -> None:
        if self.tick_timer is not None:
            self.tick_timer.cancel()
        if self.sequence is not None:
            self.sequence.close()
