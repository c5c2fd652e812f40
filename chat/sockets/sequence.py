"""A room's message numbers in order, without holes: the one owner of that order.

A room's messages are numbered 1, 2, 3, ... as they are stored, and their
broadcasts may arrive out of order (several workers send at once) or not at
all (a full queue, a Redis restart). Everything that passes a room's messages
on in order keeps a `Sequence`: a room socket (chat/sockets/delivery.py), a
worker's feed of a broadcast room (chat/sockets/feeds.py) and the page's own
socket counting its rooms (chat/sockets/me.py).

The rules:

1. Numbers are passed on strictly rising, without a hole: each one the
   number after the last passed on, or a run of them from the database
   whose absent numbers were deleted.
2. A number that arrives ahead of a missing one is held: with several
   workers the missing one is usually another worker's broadcast a moment
   behind. Once a hole has waited `hole_wait` seconds, the missing numbers
   are read from the database; each new hole in front gets its own wait.
3. A read that fails gives the sequence up, here and nowhere else: what it
   holds goes to the owner, and nothing more is passed on. The owner decides
   what that means (a room socket closes with 4013 and its client resumes; a
   feed lets each socket find the hole itself).

Its I/O is injected, so that its rules are tested without Redis, a database
or an event loop: `pass_on(first, last, items)` passes on numbers
`first`..`last` (those absent from `items` were deleted); `read_between(after,
before)` reads the stored items strictly between two numbers, or None when it
could not; `schedule(delay)` arranges for `hole_expired()` to be called after
`delay` seconds, in turn with the owner's other work, and returns a timer
whose `cancel()` stops that call; `give_up(held)` is told of a failed read.
The owner makes its calls one at a time (its own turns, or a lock).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Sequence(Generic[T]):
    """The order of one room's numbers for one owner (see the module docstring)."""

    def __init__(
        self,
        *,
        pass_on: Callable[[int, int, list[tuple[int, T]]], Awaitable[None]],
        read_between: Callable[[int, int], Awaitable[list[tuple[int, T]] | None]],
        schedule: Callable[[float], Timer],
        give_up: Callable[[list[tuple[int, T]]], Awaitable[None]],
        hole_wait: float,
        last: int = 0,
    ) -> None:
        self.pass_on = pass_on
        self.read_between = read_between
        self.schedule = schedule
        self.give_up = give_up
        self.hole_wait = hole_wait
        # The highest number passed on (or known to the owner some other way).
        self.last = last
        # Items that came ahead of a missing one, by number.
        self.held: dict[int, T] = {}
        self.timer: Timer | None = None
        # Set once given up or closed: nothing more is passed on.
        self.over = False

    async def arrived(self, *items: tuple[int, T]) -> None:
        """Items as they arrive: passed on in order, now or once the hole before them is filled.

        Several at once go on as one run. Numbers already passed on are dropped.
        """
        if self.over:
            return
        for number, item in items:
            if number > self.last:
                self.held[number] = item
        if self.last + 1 in self.held:
            await self.pass_run(self.last + 1, [])
        elif self.held and self.timer is None:
            self.timer = self.schedule(self.hole_wait)

    async def hole_expired(self) -> None:
        """The hole before the held items outlived `hole_wait`: read it from the database."""
        self.timer = None
        if self.held:
            await self.fill(before=min(self.held))

    async def fill(self, *, before: int) -> bool:
        """Pass on everything before `before` as stored now, then what is held after it.

        False when the sequence is over, or the read failed (and it gave up).
        """
        if self.over:
            return False
        first = self.last + 1
        if before <= first:
            return True  # nothing missing
        missing = await self.read_between(self.last, before)
        if self.over:
            return False  # closed while reading
        if missing is None:
            held = sorted(self.held.items())
            self.close()
            await self.give_up(held)
            return False
        # What the database does not have was deleted: the order goes on after it.
        self.last = before - 1
        await self.pass_run(first, missing)
        return True

    def close(self) -> None:
        """The owner is done with it: forget what is held, stop the timer."""
        self.over = True
        self.held.clear()
        self.stop_waiting()

    # --- the mechanics --------------------------------------------------------------------

    async def pass_run(self, first: int, run: list[tuple[int, T]]) -> None:
        """Pass on `run` (numbers `first`..self.last) and the held items that follow on,
        as one run; the next hole in front, if any, gets its own wait."""
        while (item := self.held.pop(self.last + 1, None)) is not None:
            self.last += 1
            run.append((self.last, item))
        for number in [number for number in self.held if number <= self.last]:
            del self.held[number]
        self.stop_waiting()
        if self.held:
            self.timer = self.schedule(self.hole_wait)
        await self.pass_on(first, self.last, run)

    def stop_waiting(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
