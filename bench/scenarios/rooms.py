"""Rooms: capacity per target, worker count and room size, with idle memory and the
reconnect storm in the largest room; and many small rooms, all chatting at once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from measuring import MIN_RATE, rounded
from targets.base import Target

if TYPE_CHECKING:
    from run import Bench

ROOM_SIZES = (2, 100, 1000)
WORKERS = (1, 2)
IDLE_SOCKETS = (1000, 5000)
STORM_CLIENTS = 1000
# Many small rooms: this many rooms of this many sockets, every room chatting at once.
SMALL_ROOMS = 200
SMALL_ROOM_SIZE = 5


def scenarios(bench: Bench, target: Target) -> None:
    capacity_1w: dict[int, float | None] = {}
    for workers in WORKERS:
        previous: tuple[int, float] | None = None  # (room size, capacity)
        if workers > target.max_workers:
            continue
        target.start(workers)
        try:
            for room_size in ROOM_SIZES:
                bench.say(f"{target.label}, {workers} worker(s), room of {room_size}")
                # Memory and the storm are measured once per target, in the
                # largest room with the most workers: those sockets are open anyway.
                memory_here = room_size == STORM_CLIENTS and workers == target.max_workers
                base_rss = target.rss_bytes()
                spec = target.spec(target.room())
                opened = bench.pool.open(spec, room_size, target.open_concurrency)
                bench.say(
                    f"  {room_size} sockets open in {opened['seconds']:.1f} s"
                    f" ({opened['refused']} refused and retried {opened['refusals'][:1]})"
                )
                if memory_here:
                    memory(bench, target, base_rss, workers)
                target.wait_idle()
                hint = capacity_1w.get(room_size) if workers > 1 else None
                if hint is None and previous is not None:
                    # Half the previous room's deliveries a second: a likely pass.
                    hint = previous[1] * previous[0] / room_size / 2
                capacity, steps = bench.search(target, room_size, hint)
                if capacity:
                    previous = (room_size, capacity)
                if workers == 1:
                    capacity_1w[room_size] = capacity
                scenario: dict[str, Any] = {
                    "target": target.label,
                    "workers": workers,
                    "room_size": room_size,
                    "open_seconds": opened["seconds"],
                    "open_refused": opened["refused"],
                    "capacity": capacity,
                    "steps": steps,
                    "half": None,
                    "at_tutorial_capacity": None,
                }
                if capacity:
                    bench.say(f"  capacity {capacity:g}/s; at half of it:")
                    scenario["half"] = bench.measure(target, rounded(capacity / 2))
                tutorial = scenario_of(bench, "tutorial", workers, room_size)
                if target is bench.site and tutorial is not None:
                    # Below the lowest rate, the tutorial's p99 there is compared.
                    rate = tutorial["capacity"] or MIN_RATE
                    bench.say(f"  at the tutorial's capacity, {rate:g}/s:")
                    scenario["at_tutorial_capacity"] = bench.measure(target, rate)
                bench.results["scenarios"].append(scenario)
                bench.pool.forget()
                target.wait_idle()
        finally:
            bench.pool.forget()
            target.stop()
    bench.results["log_warnings"][target.label] = target.log_warnings()


def scenario_of(bench: Bench, label: str, workers: int, room_size: int) -> dict[str, Any] | None:
    for scenario in bench.results["scenarios"]:
        if (scenario["target"], scenario["workers"], scenario["room_size"]) == (
            label,
            workers,
            room_size,
        ):
            return scenario
    return None


def memory(bench: Bench, target: Target, base_rss: int, workers: int) -> None:
    """With the first STORM_CLIENTS sockets open: memory, more sockets, the storm.

    Leaves exactly those sockets open again, in their room, for the search.
    """
    entry: dict[str, Any] = {
        "target": target.label,
        "workers": workers,
        "base_rss_bytes": base_rss,
        "per_socket": {},
    }
    for count in IDLE_SOCKETS:
        if count > bench.pool.sockets:
            # The rest idle in a room of their own: the search's room stays as it was.
            more = count - bench.pool.sockets
            opened = bench.pool.open(target.spec(target.room()), more, target.open_concurrency)
            entry["open_refused"] = opened["refused"]
            bench.say(
                f"  {more} more sockets open in {opened['seconds']:.1f} s"
                f" ({opened['refused']} refused and retried)"
            )
        target.wait_idle()
        time.sleep(0.5)
        rss = target.rss_bytes()
        entry["per_socket"][str(count)] = {
            "rss_bytes": rss,
            "bytes_per_socket": (rss - base_rss) / count,
        }
        bench.say(f"  {count} idle sockets: {(rss - base_rss) / count / 1024:.1f} KiB each")
    bench.pool.trim(STORM_CLIENTS)
    target.wait_idle()
    bench.pool.close_all()
    target.wait_idle()
    entry["storm"] = storm = bench.pool.storm(target.open_concurrency)
    bench.say(
        f"  storm of {STORM_CLIENTS}: {storm['handshakes_per_s']:.0f} handshakes/s,"
        f" {storm['failed']} refused {storm['failures'][:1]}"
    )
    bench.results["memory"].append(entry)


def small_rooms(bench: Bench, target: Target) -> None:
    """SMALL_ROOMS rooms of SMALL_ROOM_SIZE sockets on the most workers; the highest
    total rate (one sender per room) with p99 within the limit.

    node-ws has no rooms, so it sits this one out.
    """
    workers = target.max_workers
    sockets = SMALL_ROOMS * SMALL_ROOM_SIZE
    bench.say(f"{target.label}, {workers} worker(s), {SMALL_ROOMS} rooms of {SMALL_ROOM_SIZE}")
    target.start(workers)
    try:
        target.wait_idle()
        spec = target.rooms_spec(SMALL_ROOMS, SMALL_ROOM_SIZE)
        opened = bench.pool.open(spec, sockets, target.open_concurrency)
        bench.say(f"  {sockets} sockets open in {opened['seconds']:.1f} s")
        target.wait_idle()
        capacity, steps = bench.search(target, SMALL_ROOM_SIZE, None)
        entry: dict[str, Any] = {
            "target": target.label,
            "workers": workers,
            "rooms": SMALL_ROOMS,
            "room_size": SMALL_ROOM_SIZE,
            "capacity": capacity,
            "steps": steps,
        }
        if capacity:
            bench.say(f"  capacity {capacity:g} messages/s in all")
        bench.results["small_rooms"].append(entry)
    finally:
        bench.pool.forget()
        target.stop()
