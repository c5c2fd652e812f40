"""One socket's order: what it has been sent, in what order, and what it still owes.

The rules (docs/protocol-v1.md, Delivery; docs/protocol.md, Order on a socket):

1. `message` ids on a socket rise strictly, without a hole after the first.
   A message that arrives ahead of a missing one is held: with several workers
   the missing one is usually another worker's broadcast a moment behind.
   After `hole_wait` seconds the missing ones are read from the database.
2. The one repeat: the answer to a resend whose id the socket already has.
   A resend of an id the socket has not been sent yet is delivered in its
   place in the order, once.
3. Every message stored through this socket is acknowledged (sent to it)
   before any later answer to the socket's frames, and before a close for
   flooding: answers wait behind the acknowledgements still owed.

`Delivery` takes its I/O as arguments, so that its rules are tested without
Redis, a database or a socket: `send` writes one frame's text; `read_between`
reads the stored messages strictly between two ids (rendered for this socket),
or None when it could not (the socket is then closed, and nothing more goes
out); `schedule` arranges for `hole_expired()` to be called after a delay, in
turn with the socket's other events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger(__name__)

# A stored message rendered for this socket: (its id, the `message` frame's text).
Rendered = tuple[int, str]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Delivery:
    """The order of one socket's frames (see the module docstring)."""

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        read_between: Callable[[int, int], Awaitable[list[Rendered] | None]],
        schedule: Callable[[float], Timer],
        hole_wait: float,
    ) -> None:
        self.send = send
        self.read_between = read_between
        self.schedule = schedule
        self.hole_wait = hole_wait
        # The highest id sent (or older than the socket's welcome).
        self.last_sent = 0
        # Messages that came ahead of a missing one, by id.
        self.held: dict[int, str] = {}
        # The highest id this socket owes an acknowledgement of (its own stored
        # message, or a resend's answer not yet sent in order).
        self.owed = 0
        # Answers to the socket's frames waiting behind acknowledgements owed.
        self.answers: deque[str] = deque()
        self.timer: Timer | None = None
        # Set when a read failed: the socket is closed, nothing more goes out.
        self.stopped = False
        # Live messages, hole filling and the tail check take turns.
        self.lock = asyncio.Lock()

    # --- what the socket is told --------------------------------------------------------

    async def start(self, *, replay: list[Rendered], last_number: int) -> None:
        """After the welcome: the replay of a resume, then live messages after `last_number`."""
        for _, text in replay:
            await self.send(text)
        self.last_sent = last_number

    async def live(self, number: int, text: str) -> None:
        """A message broadcast to the room."""
        if number <= self.last_sent:
            return  # already sent: replayed on resume, filled in, or acknowledged
        async with self.lock:
            await self.place(number, text)

    async def live_batch(self, *, first: int, last: int, text: str | None) -> bool:
        """Messages first..last as one frame `text` (None: the ones there are were deleted).

        False when this socket cannot take them that way (it is elsewhere in
        the order, holds messages or owes answers): the caller then hands them
        over one by one.
        """
        if last <= self.last_sent:
            return True
        async with self.lock:
            if self.stopped or first != self.last_sent + 1 or self.held or self.answers:
                return False
            if text is not None:
                await self.send(text)
            self.last_sent = last
            return True

    def take_batch(self, *, first: int, last: int, write: Callable[[], bool]) -> bool:
        """live_batch at once, without waiting: `write()` sends the frame there and then.

        False, with nothing written, whenever live_batch would wait or refuse,
        or `write()` could not send: the caller then hands the batch over as
        an event.
        """
        if last <= self.last_sent:
            return True
        if (
            self.lock.locked()
            or self.stopped
            or first != self.last_sent + 1
            or self.held
            or self.answers
            or not write()
        ):
            return False
        self.last_sent = last
        return True

    async def stored(self, number: int, text: str) -> None:
        """A message this socket stored: its acknowledgement, in its place in the order."""
        async with self.lock:
            self.owed = max(self.owed, number)
            if number > self.last_sent:
                await self.place(number, text)

    async def resent(self, number: int, text: str) -> None:
        """The answer to a resend of a message stored before."""
        if number <= self.last_sent:
            await self.answer(text)  # the one repeat allowed
        else:
            await self.stored(number, text)

    async def answer(self, text: str) -> None:
        """An answer to one of the socket's frames: after every acknowledgement owed."""
        async with self.lock:
            if self.stopped:
                return
            if self.owed > self.last_sent:
                self.answers.append(text)
            else:
                await self.send(text)

    # --- holes ------------------------------------------------------------------------------

    async def hole_expired(self) -> None:
        """The hole before the held messages outlived `hole_wait`: read it from the database."""
        async with self.lock:
            self.timer = None
            if self.held and await self.fill(before=min(self.held)):
                await self.send_held()

    async def catch_up(self, last_number: int) -> None:
        """The watcher's tail check: send what the room has up to `last_number`."""
        if last_number <= self.last_sent:
            return
        async with self.lock:
            if last_number > self.last_sent and not self.stopped:
                logger.info("socket caught up on %s..%s", self.last_sent + 1, last_number)
                if await self.fill(before=last_number + 1):
                    await self.send_held()

    async def settle(self) -> None:
        """Send everything held and owed now, as stored now, without waiting for a hole.

        Before a change to a message (an edit or a delete must follow the
        message, and the held copy may be the one changed), and before a close
        that must not lose an acknowledgement.
        """
        async with self.lock:
            through = max([self.owed, *self.held])
            if through > self.last_sent and await self.fill(before=through + 1):
                await self.send_held()

    # --- the mechanics, under the lock ---------------------------------------------------

    async def place(self, number: int, text: str) -> None:
        if self.stopped or number <= self.last_sent:
            return
        if number > self.last_sent + 1:
            self.held[number] = text
            if self.timer is None:
                self.timer = self.schedule(self.hole_wait)
            return
        await self.send_message(number, text)
        if self.held or self.answers or self.timer is not None:
            await self.send_held()

    async def send_message(self, number: int, text: str) -> None:
        await self.send(text)
        self.last_sent = number

    async def send_held(self) -> None:
        """Send the held messages that now follow on; then the answers no longer waiting."""
        while (text := self.held.pop(self.last_sent + 1, None)) is not None:
            await self.send_message(self.last_sent + 1, text)
        for number in [number for number in self.held if number <= self.last_sent]:
            del self.held[number]
        if self.held:
            if self.timer is None:  # another hole further on gets its own wait
                self.timer = self.schedule(self.hole_wait)
        elif self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.owed <= self.last_sent:
            while self.answers:
                await self.send(self.answers.popleft())

    async def fill(self, *, before: int) -> bool:
        """Send the stored messages between the last one sent and `before`; False if stopped."""
        if self.stopped:
            return False
        missing = await self.read_between(self.last_sent, before)
        if missing is None:
            # The socket is closed (4013): better a resume than a hole.
            self.stopped = True
            self.held.clear()
            self.answers.clear()
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            return False
        for number, text in missing:
            await self.send_message(number, text)
        self.last_sent = max(self.last_sent, before - 1)
        return True

    def close(self) -> None:
        """The socket is gone: forget what was held, stop the timer."""
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
