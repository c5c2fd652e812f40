"""Redis shards, 3 against 1: the capacity on each, and each shard's commands, CPU and keys."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from measuring import HURRY_AFTER_SECONDS, MIN_RATE, rounded
from report.text import rate_text
from targets.servers import RedisServer
from targets.site import Site

if TYPE_CHECKING:
    from run import Bench

# Redis shards: the site on SHARDS shards against the site on one, in the same run, each
# on Redis servers of the run's own. SHARD_ROOMS rooms of SHARD_ROOM_SIZE sockets (every
# socket its own user), one sender in each room, on SHARD_WORKERS workers (every worker
# keeps a queue on every shard).
SHARDS = 3
SHARD_ROOMS = 1000
SHARD_ROOM_SIZE = 2
SHARD_WORKERS = 3
# Search steps: at a few hundred messages/s, one message from most rooms per step.
SHARD_STEP_SECONDS = 3.0
# The step whose commands are counted: every room sends as many messages as every other,
# for at least the first of these many seconds (two of the workers' 10 s heartbeats, whose
# presence work is much of Redis's), and at most the second.
SHARD_COUNT_SECONDS = (20.0, 40.0)
# The target: each shard's commands within this share of the shards' mean.
SHARD_BALANCE = 0.2


def shard_count_seconds(rate: float) -> float:
    """How long the counted step of the shards scenario lasts at `rate` (messages/s in all):
    a whole number of rounds of one message from every room, if a round is short enough."""
    low, high = SHARD_COUNT_SECONDS
    round_seconds = SHARD_ROOMS / rate
    if round_seconds > high:
        return high
    # Half a message short of the next round, so that no rounding lets one more in.
    return math.ceil(low / round_seconds) * round_seconds - 0.5 / rate


def shards(bench: Bench) -> None:
    """The site on SHARDS Redis shards against the site on one, in the same run.

    Each on Redis servers of its own (fresh, no persistence), a fresh database
    and SHARD_WORKERS workers, with SHARD_ROOMS rooms of SHARD_ROOM_SIZE sockets
    all chatting: the capacity of each, searched as the other scenarios are; then
    one step at the same rate for both (half the capacity on one shard), each
    shard's command counts reset before it (CONFIG RESETSTAT) and read after it.
    """
    # Both searches bisect as often, wherever the scenario falls in the run.
    hurry = time.monotonic() - bench.started > HURRY_AFTER_SECONDS
    rate: float | None = None
    sockets = SHARD_ROOMS * SHARD_ROOM_SIZE
    for count in (1, SHARDS):
        servers = [
            RedisServer(f"redis-shards{count}-{number}", bench.log_dir) for number in range(count)
        ]
        site = Site(
            bench.log_dir,
            bench.database,
            redis_url=",".join(server.url for server in servers),
            name=f"shards{count}",
            users=sockets,
        )
        bench.say(
            f"site on {count} Redis shard(s), {SHARD_WORKERS} workers,"
            f" {SHARD_ROOMS} rooms of {SHARD_ROOM_SIZE}"
        )
        try:
            for server in servers:
                server.start()
            site.prepare()
            site.start(SHARD_WORKERS)
            spec = site.rooms_spec(SHARD_ROOMS, SHARD_ROOM_SIZE)
            opened = bench.pool.open(spec, sockets, site.open_concurrency)
            bench.say(f"  {sockets} sockets open in {opened['seconds']:.1f} s")
            site.wait_idle()
            capacity, steps = bench.search(
                site,
                SHARD_ROOM_SIZE,
                None,
                seconds=SHARD_STEP_SECONDS,
                hurry=hurry,
                what=f"site on {count} Redis shard(s), {SHARD_ROOMS} rooms",
            )
            bench.say(f"  capacity {rate_text(capacity)} messages/s in all")
            if rate is None:
                rate = rounded((capacity or MIN_RATE) / 2)
            seconds = shard_count_seconds(rate)
            bench.say(f"  {seconds:.1f} s at {rate:g}/s, each shard's commands counted:")
            site.wait_idle()
            for server in servers:
                server.stats_reset()
            before = [server.stats() for server in servers]
            started = time.monotonic()
            counted = bench.measure(site, rate, seconds=seconds)
            after = [server.stats() for server in servers]
            window = time.monotonic() - started
            shards = []
            for number, (server, early, late) in enumerate(
                zip(servers, before, after, strict=True)
            ):
                done = server.stats_between(early, late)
                shards.append(
                    {
                        "shard": number,
                        "calls": sum(done["by_command"].values()),
                        "usec": sum(done["usec_by_command"].values()),
                        **done,
                        "keys": server.keys_by_kind(site.prefix),
                    }
                )
            for shard in shards:
                bench.say(
                    f"  shard {shard['shard']}: {shard['calls']:,} calls,"
                    f" {shard['cpu_seconds']:.2f} s CPU"
                )
            bench.results["shards"].append(
                {
                    "shards": count,
                    "workers": SHARD_WORKERS,
                    "rooms": SHARD_ROOMS,
                    "room_size": SHARD_ROOM_SIZE,
                    "open_seconds": opened["seconds"],
                    "capacity": capacity,
                    "steps": steps,
                    "counted": counted,
                    "counted_window_s": window,
                    "per_shard": shards,
                    "log_warnings": site.log_warnings(),
                }
            )
        finally:
            bench.pool.forget()
            site.stop()
            site.cleanup(redis_keys=False)
            for server in servers:
                server.stop()
