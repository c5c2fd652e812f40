"""chat.sockets.delivery: the order of one socket's frames, with its I/O faked (no Redis,
no database).

Frames are short texts here: "m7" is message 7 as broadcast, "m7 (db)" as read
from the database, "error", "pong" and the like are answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chat.sockets.delivery import Delivery
from tests.fakes import FakeTimer


@dataclass
class Socket:
    """What the socket was sent, what the database holds, and the timers asked for."""

    sent: list[str] = field(default_factory=list)
    database: set[int] = field(default_factory=set)
    reads: list[tuple[int, int]] = field(default_factory=list)
    timers: list[FakeTimer] = field(default_factory=list)
    read_fails: bool = False
    closed: bool = False

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def read_between(self, after: int, before: int) -> list[tuple[int, str]] | None:
        self.reads.append((after, before))
        if self.read_fails:
            return None
        return [(n, f"m{n} (db)") for n in sorted(self.database) if after < n < before]

    async def give_up(self) -> None:
        self.closed = True

    def schedule(self, delay: float) -> FakeTimer:
        timer = FakeTimer(delay)
        self.timers.append(timer)
        return timer

    def live_timers(self) -> list[FakeTimer]:
        return [timer for timer in self.timers if not (timer.cancelled or timer.fired)]

    async def expire(self, delivery: Delivery) -> None:
        """The one timer running fires: the hole outlived its wait."""
        [timer] = self.live_timers()
        timer.fired = True
        await delivery.hole_expired()


@pytest.fixture(autouse=True)
def _flush_layer() -> None:
    """No channel layer here: stands in for the suite's flush of it."""


async def opened(last_number: int = 0, *, stored: int | None = None) -> tuple[Delivery, Socket]:
    """A delivery after a welcome at `last_number`; the database holds 1..`stored`."""
    socket = Socket(database=set(range(1, (stored or last_number) + 1)))
    delivery = Delivery(
        send=socket.send,
        read_between=socket.read_between,
        give_up=socket.give_up,
        schedule=socket.schedule,
        hole_wait=0.2,
    )
    await delivery.start(replay=[], last_number=last_number)
    return delivery, socket


# --- rule 1: ids rise strictly, without holes ------------------------------------------


async def test_the_replay_goes_first_and_live_messages_follow_on():
    socket = Socket()
    delivery = Delivery(
        send=socket.send,
        read_between=socket.read_between,
        give_up=socket.give_up,
        schedule=socket.schedule,
        hole_wait=0.2,
    )
    await delivery.start(replay=[(4, "m4"), (5, "m5")], last_number=5)
    await delivery.live(5, "m5")  # its broadcast, already replayed
    await delivery.live(6, "m6")
    assert socket.sent == ["m4", "m5", "m6"]


async def test_messages_in_order_go_at_once_and_repeats_are_dropped():
    delivery, socket = await opened(3)
    for number in (4, 5, 4, 3, 6):
        await delivery.live(number, f"m{number}")
    assert socket.sent == ["m4", "m5", "m6"]
    assert socket.timers == [] and socket.reads == []


async def test_a_message_ahead_is_held_until_the_missing_one_arrives():
    delivery, socket = await opened(3)
    await delivery.live(6, "m6")
    await delivery.live(5, "m5")
    assert socket.sent == []
    [timer] = socket.timers
    assert timer.delay == 0.2 and not timer.cancelled
    await delivery.live(4, "m4")
    assert socket.sent == ["m4", "m5", "m6"]
    assert timer.cancelled and socket.reads == []  # no database read was needed


async def test_a_hole_that_outlives_the_wait_is_read_from_the_database():
    delivery, socket = await opened(3, stored=10)
    await delivery.live(6, "m6")
    await delivery.live(9, "m9")
    await socket.expire(delivery)
    # 4 and 5 from the database, then 6 as held; 9 waits for its own hole.
    assert socket.sent == ["m4 (db)", "m5 (db)", "m6"]
    assert socket.reads == [(3, 6)]
    assert len(socket.live_timers()) == 1
    await socket.expire(delivery)
    assert socket.sent[3:] == ["m7 (db)", "m8 (db)", "m9"]
    assert socket.live_timers() == []


async def test_a_deleted_message_leaves_no_hole_behind():
    delivery, socket = await opened(3, stored=6)
    socket.database.discard(4)  # deleted: history and holes leave it out
    await delivery.live(6, "m6")
    await socket.expire(delivery)
    assert socket.sent == ["m5 (db)", "m6"]
    await delivery.live(7, "m7")
    assert socket.sent[-1] == "m7"


async def test_the_tail_check_sends_what_no_broadcast_brought():
    delivery, socket = await opened(3, stored=5)
    await delivery.catch_up(3)
    assert socket.reads == []
    await delivery.catch_up(5)
    assert socket.sent == ["m4 (db)", "m5 (db)"]
    await delivery.live(5, "m5")
    assert socket.sent == ["m4 (db)", "m5 (db)"]


async def test_settling_sends_held_messages_as_stored_now():
    """Before an edit or a delete: the message first, as the database has it."""
    delivery, socket = await opened(3, stored=6)
    await delivery.live(6, "m6")
    await delivery.settle()
    assert socket.sent == ["m4 (db)", "m5 (db)", "m6 (db)"]
    assert socket.live_timers() == []


async def test_a_failed_read_stops_everything():
    delivery, socket = await opened(3, stored=6)
    await delivery.stored(6, "m6 mine")
    await delivery.answer("error")
    socket.read_fails = True
    await socket.expire(delivery)
    await delivery.live(4, "m4")
    await delivery.answer("pong")
    assert socket.sent == []
    assert socket.closed  # with 4013: its client resumes
    assert socket.live_timers() == []


# --- rule 2: the one repeat is a resend's answer whose id the socket has -----------------


async def test_a_resend_of_an_id_the_socket_has_is_answered_at_once():
    delivery, socket = await opened(3)
    await delivery.live(4, "m4")
    await delivery.resent(2, "m2 mine")
    await delivery.resent(4, "m4 mine")
    assert socket.sent == ["m4", "m2 mine", "m4 mine"]


async def test_a_resend_whose_id_is_ahead_comes_in_its_place_once():
    """Seen in a Redis restart: the stream read ...19, 23, 20, 21, 22, 23."""
    delivery, socket = await opened(19, stored=23)
    await delivery.resent(23, "m23 mine")
    await delivery.answer("pong")
    assert socket.sent == []
    for number in (20, 21, 22, 23):
        await delivery.live(number, f"m{number}")
    assert socket.sent == ["m20", "m21", "m22", "m23 mine", "pong"]


async def test_a_resend_ahead_whose_hole_outlives_the_wait_is_read_in():
    delivery, socket = await opened(19, stored=23)
    await delivery.resent(23, "m23 mine")
    await socket.expire(delivery)
    assert socket.sent == ["m20 (db)", "m21 (db)", "m22 (db)", "m23 mine"]


# --- rule 3: acknowledgements before later answers and before a flooding close -----------


async def test_an_acknowledgement_in_order_goes_at_once_and_its_broadcast_is_dropped():
    delivery, socket = await opened(3)
    await delivery.stored(4, "m4 mine")
    await delivery.answer("error")
    await delivery.live(4, "m4")
    assert socket.sent == ["m4 mine", "error"]


async def test_a_refusal_waits_for_the_acknowledgements_in_flight():
    """Seen in a burst: rate_limited overtook acknowledgements still on their way."""
    delivery, socket = await opened(3)
    await delivery.live(5, "m5")  # another's, ahead of 4
    await delivery.stored(6, "m6 mine")
    await delivery.answer("error 1")
    await delivery.stored(7, "m7 mine")
    await delivery.answer("error 2")
    assert socket.sent == []
    await delivery.live(4, "m4")
    assert socket.sent == ["m4", "m5", "m6 mine", "m7 mine", "error 1", "error 2"]


async def test_answers_do_not_wait_for_other_peoples_held_messages():
    delivery, socket = await opened(3)
    await delivery.live(5, "m5")
    await delivery.answer("pong")
    assert socket.sent == ["pong"]


async def test_a_flooding_close_comes_after_every_acknowledgement():
    """settle() before the 4429 close: acknowledgements owed go out now, then the refusals."""
    delivery, socket = await opened(3, stored=7)
    await delivery.stored(5, "m5 mine")
    await delivery.stored(7, "m7 mine")
    await delivery.answer("rate_limited")
    await delivery.settle()
    assert socket.sent == ["m4 (db)", "m5 (db)", "m6 (db)", "m7 (db)", "rate_limited"]
    assert socket.live_timers() == []


async def test_an_acknowledgement_the_tail_check_sent_first_is_not_sent_again():
    delivery, socket = await opened(3, stored=4)
    await delivery.catch_up(4)
    await delivery.stored(4, "m4 mine")
    await delivery.answer("error")
    assert socket.sent == ["m4 (db)", "error"]
