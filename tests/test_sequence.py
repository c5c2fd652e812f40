"""chat.sockets.sequence: a room's numbers in order, with its I/O faked (no Redis, no
database, no event loop's timers).

Items are short texts: "m7" is number 7 as broadcast, "m7 (db)" as read from the
database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chat.sockets.sequence import Sequence
from tests.fakes import FakeTimer


@dataclass
class Owner:
    """What was passed on (as runs), what the database holds, the timers asked for."""

    runs: list[tuple[int, int, list[str]]] = field(default_factory=list)
    database: set[int] = field(default_factory=set)
    reads: list[tuple[int, int]] = field(default_factory=list)
    timers: list[FakeTimer] = field(default_factory=list)
    read_fails: bool = False
    given_up: list[list[tuple[int, str]]] = field(default_factory=list)

    async def pass_on(self, first: int, last: int, run: list[tuple[int, str]]) -> None:
        self.runs.append((first, last, [item for _, item in run]))

    async def read_between(self, after: int, before: int) -> list[tuple[int, str]] | None:
        self.reads.append((after, before))
        if self.read_fails:
            return None
        return [(n, f"m{n} (db)") for n in sorted(self.database) if after < n < before]

    def schedule(self, delay: float) -> FakeTimer:
        timer = FakeTimer(delay)
        self.timers.append(timer)
        return timer

    async def give_up(self, held: list[tuple[int, str]]) -> None:
        self.given_up.append(held)

    def live_timers(self) -> list[FakeTimer]:
        return [timer for timer in self.timers if not (timer.cancelled or timer.fired)]

    async def expire(self, sequence: Sequence[str]) -> None:
        """The one timer running fires: the hole outlived its wait."""
        [timer] = self.live_timers()
        timer.fired = True
        await sequence.hole_expired()

    def items(self) -> list[str]:
        return [item for _, _, run in self.runs for item in run]


@pytest.fixture(autouse=True)
def _flush_layer() -> None:
    """No channel layer here: stands in for the suite's flush of it."""


def started(last: int = 0, *, stored: int | None = None) -> tuple[Sequence[str], Owner]:
    """A sequence whose last number passed on is `last`; the database holds 1..`stored`."""
    owner = Owner(database=set(range(1, (stored or last) + 1)))
    sequence: Sequence[str] = Sequence(
        pass_on=owner.pass_on,
        read_between=owner.read_between,
        schedule=owner.schedule,
        give_up=owner.give_up,
        hole_wait=0.2,
        last=last,
    )
    return sequence, owner


# --- rule 1: strictly rising, without a hole ----------------------------------------------


async def test_the_next_number_goes_on_at_once_and_older_ones_are_dropped():
    sequence, owner = started(3)
    for number in (4, 5, 4, 3, 6):
        await sequence.arrived((number, f"m{number}"))
    assert owner.runs == [(4, 4, ["m4"]), (5, 5, ["m5"]), (6, 6, ["m6"])]
    assert sequence.last == 6
    assert owner.timers == [] and owner.reads == []


async def test_several_at_once_go_on_as_one_run_in_order():
    sequence, owner = started(3)
    await sequence.arrived((6, "m6"), (4, "m4"), (5, "m5"), (9, "m9"))
    assert owner.runs == [(4, 6, ["m4", "m5", "m6"])]
    assert list(sequence.held) == [9] and len(owner.live_timers()) == 1


# --- rule 2: held ahead of a missing one, then read ------------------------------------------


async def test_one_ahead_is_held_until_the_missing_one_arrives():
    sequence, owner = started(3)
    await sequence.arrived((6, "m6"))
    await sequence.arrived((5, "m5"))
    assert owner.runs == []
    [timer] = owner.timers
    assert timer.delay == 0.2
    await sequence.arrived((4, "m4"))
    assert owner.runs == [(4, 6, ["m4", "m5", "m6"])]
    assert timer.cancelled and owner.reads == []  # no database read was needed


async def test_a_hole_that_outlives_the_wait_is_read_then_the_held_follow_in_one_run():
    sequence, owner = started(3, stored=10)
    await sequence.arrived((6, "m6"))
    await sequence.arrived((9, "m9"))
    await owner.expire(sequence)
    # 4 and 5 from the database, then 6 as held; 9 waits for its own hole.
    assert owner.runs == [(4, 6, ["m4 (db)", "m5 (db)", "m6"])]
    assert owner.reads == [(3, 6)]
    assert len(owner.live_timers()) == 1
    await owner.expire(sequence)
    assert owner.runs[1] == (7, 9, ["m7 (db)", "m8 (db)", "m9"])
    assert owner.live_timers() == []


async def test_each_new_hole_in_front_gets_its_own_wait():
    sequence, owner = started(3)
    await sequence.arrived((5, "m5"))
    await sequence.arrived((8, "m8"))
    [first] = owner.timers
    await sequence.arrived((4, "m4"))  # the hole before 5 is gone; 6..7 is another
    assert first.cancelled
    assert len(owner.live_timers()) == 1 and owner.live_timers()[0] is not first


async def test_a_deleted_number_is_passed_over_not_waited_for():
    sequence, owner = started(3, stored=6)
    owner.database.discard(4)  # deleted: the database leaves it out
    await sequence.arrived((6, "m6"))
    await owner.expire(sequence)
    assert owner.runs == [(4, 6, ["m5 (db)", "m6"])]  # 4 is in the run's span, without an item
    await sequence.arrived((7, "m7"))
    assert owner.runs[-1] == (7, 7, ["m7"])


async def test_a_fill_up_to_a_number_reads_even_what_is_held_as_stored_now():
    """settle() and the tail check: everything before `before` comes from the database."""
    sequence, owner = started(3, stored=8)
    await sequence.arrived((6, "m6"))
    await sequence.arrived((9, "m9"))
    assert await sequence.fill(before=8)
    assert owner.runs == [(4, 7, ["m4 (db)", "m5 (db)", "m6 (db)", "m7 (db)"])]
    assert list(sequence.held) == [9] and len(owner.live_timers()) == 1
    assert await sequence.fill(before=5)  # nothing missing before 5: no read
    assert owner.reads == [(3, 8)]


# --- rule 3: a failed read gives up, once, here ----------------------------------------------


async def test_a_failed_read_gives_up_with_what_was_held_and_nothing_more_goes_on():
    sequence, owner = started(3, stored=8)
    await sequence.arrived((7, "m7"))
    await sequence.arrived((6, "m6"))
    owner.read_fails = True
    await owner.expire(sequence)
    assert owner.given_up == [[(6, "m6"), (7, "m7")]]
    assert sequence.over and owner.live_timers() == []
    await sequence.arrived((4, "m4"))
    assert not await sequence.fill(before=9)
    assert owner.runs == [] and owner.reads == [(3, 6)]


async def test_a_sequence_closed_while_it_reads_passes_nothing_on():
    sequence, owner = started(3, stored=6)
    await sequence.arrived((6, "m6"))

    async def read_then_close(after: int, before: int) -> list[tuple[int, str]] | None:
        sequence.close()  # the socket went away meanwhile
        return [(4, "m4 (db)")]

    sequence.read_between = read_then_close
    await owner.expire(sequence)
    assert owner.runs == [] and owner.given_up == []


async def test_a_closed_sequence_stops_its_timer_and_forgets_what_it_held():
    sequence, owner = started(3)
    await sequence.arrived((5, "m5"))
    sequence.close()
    assert sequence.held == {} and owner.live_timers() == []
    await sequence.hole_expired()  # a call already on its way changes nothing
    assert owner.runs == [] and owner.reads == []
