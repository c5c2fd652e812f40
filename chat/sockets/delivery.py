"""One socket's order: what it has been sent, in what order, and what it still owes.

The rules (docs/protocol-v1.md, Delivery; docs/protocol.md, Order on a socket):

1. `message` ids on a socket rise strictly, without a hole after the first.
   A message that arrives ahead of a missing one is held: with several workers
   the missing one is usually another worker's broadcast a moment behind.
   After `hole_wait` seconds the missing ones are read from the database.
   That order is the socket's `Sequence` (chat/sockets/sequence.py).
2. The one repeat: the answer to a resend whose id the socket already has.
   A resend of an id the socket has not been sent yet is delivered in its
   place in the order, once.
3. Every message stored through this socket is acknowledged (sent to it)
   before any later answer to the socket's frames, and before a close for
   flooding: answers wait behind the acknowledgements still owed.

`Delivery` takes its I/O as arguments, so that its rules are tested without
Redis, a database or a socket: `send` writes one frame's text; `read_between`
reads the stored messages strictly between two ids (rendered for this socket),
or None when it could not; `give_up()` is called when such a read failed (the
socket then closes, 4013, and nothing more goes out); `schedule` arranges for
`hole_expired()` to be called after a delay, in turn with the socket's other
events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chat.sockets.sequence import Sequence, Timer

logger = logging.getLogger(__name__)

# A stored message rendered for this socket: (its id, the `message` frame's text).
Rendered = tuple[int, str]
# A batch's frame: written as it is (chat/platform/wire.py's SharedText).
Frame = TypeVar("Frame", bound=str)


class Delivery:
    """The order of one socket's frames (see the module docstring)."""

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        read_between: Callable[[int, int], Awaitable[list[Rendered] | None]],
        give_up: Callable[[], Awaitable[None]],
        schedule: Callable[[float], Timer],
        hole_wait: float,
    ) -> None:
        self.send = send
        self.give_up = give_up
        # Rule 1: the ids sent, and the messages held ahead of a missing one.
        self.sequence: Sequence[str] = Sequence(
            pass_on=self.pass_on,
            read_between=read_between,
            schedule=schedule,
            give_up=self.gave_up,
            hole_wait=hole_wait,
        )
        # The highest id this socket owes an acknowledgement of (its own stored
        # message, or a resend's answer not yet sent in order).
        self.owed = 0
        # Answers to the socket's frames waiting behind acknowledgements owed.
        self.answers: deque[str] = deque()
        # Live messages, hole filling and the tail check take turns.
        self.lock = asyncio.Lock()

    @property
    def last_sent(self) -> int:
        """The highest id sent (or older than the socket's welcome)."""
        return self.sequence.last

    # --- what the socket is told --------------------------------------------------------

    async def start(self, *, replay: list[Rendered], last_number: int) -> None:
        """After the welcome: the replay of a resume, then live messages after `last_number`."""
        for _, text in replay:
            await self.send(text)
        self.sequence.last = last_number

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
            if not self.follows(first):
                return False
            if text is not None:
                await self.send(text)
            self.sequence.last = last
            return True

    def take_batch(
        self, *, first: int, last: int, text: Frame | None, write: Callable[[Frame], bool]
    ) -> bool:
        """live_batch at once, without waiting: `write(text)` sends the frame there and then.

        False, with nothing written, whenever live_batch would wait or refuse,
        or `write` could not send: the caller then hands the batch over as an
        event.
        """
        if last <= self.last_sent:
            return True
        if self.lock.locked() or not self.follows(first):
            return False
        if text is not None and not write(text):
            return False
        self.sequence.last = last
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
            if self.sequence.over:
                return
            if self.owed > self.last_sent:
                self.answers.append(text)
            else:
                await self.send(text)

    # --- holes ------------------------------------------------------------------------------

    async def hole_expired(self) -> None:
        """The hole before the held messages outlived `hole_wait`: read it from the database."""
        async with self.lock:
            await self.sequence.hole_expired()
            await self.send_answers()

    async def catch_up(self, last_number: int) -> None:
        """The watcher's tail check: send what the room has up to `last_number`."""
        if last_number <= self.last_sent:
            return
        async with self.lock:
            if last_number > self.last_sent and not self.sequence.over:
                logger.info("socket caught up on %s..%s", self.last_sent + 1, last_number)
                await self.sequence.fill(before=last_number + 1)
                await self.send_answers()

    async def settle(self) -> None:
        """Send everything held and owed now, as stored now, without waiting for a hole.

        Before a change to a message (an edit or a delete must follow the
        message, and the held copy may be the one changed), and before a close
        that must not lose an acknowledgement.
        """
        async with self.lock:
            through = max([self.owed, *self.sequence.held])
            if through > self.last_sent:
                await self.sequence.fill(before=through + 1)
                await self.send_answers()

    def close(self) -> None:
        """The socket is gone: forget what was held, stop the timer."""
        self.sequence.close()

    # --- the mechanics, under the lock ---------------------------------------------------

    def follows(self, first: int) -> bool:
        """Whether messages from `first` on may go to the socket as they are, now."""
        sequence = self.sequence
        return (
            not sequence.over
            and first == sequence.last + 1
            and not sequence.held
            and not self.answers
        )

    async def place(self, number: int, text: str) -> None:
        await self.sequence.arrived((number, text))
        await self.send_answers()

    async def pass_on(self, first: int, last: int, messages: list[Rendered]) -> None:
        for _, text in messages:
            await self.send(text)

    async def send_answers(self) -> None:
        """The answers no longer waiting behind an acknowledgement."""
        if self.owed <= self.last_sent and not self.sequence.over:
            while self.answers:
                await self.send(self.answers.popleft())

    async def gave_up(self, held: list[Rendered]) -> None:
        """A hole could not be read: better a resume than a hole (the socket closes, 4013)."""
        self.answers.clear()
        await self.give_up()
