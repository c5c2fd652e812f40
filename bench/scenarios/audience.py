"""An audience: thousands of sockets in one room, on the most workers, at a few rates."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from targets.base import Target
from targets.site import Site

if TYPE_CHECKING:
    from run import Bench

# The audience scenario: a broadcast room of this many sockets on 2 workers,
# `BROADCAST_SENDERS` of them publishing, at each of these rates.
BROADCAST_VIEWERS = 5000
BROADCAST_SENDERS = 5
BROADCAST_RATES = (1.0, 10.0, 50.0)
# Longer steps than the searches': at 1 message/s a 2-second step has 2 messages.
BROADCAST_STEP_SECONDS = 6.0


def broadcast(bench: Bench, target: Target) -> None:
    """BROADCAST_VIEWERS sockets in one room on the most workers; steps at each rate.

    On the site the room is a broadcast room open to viewers: its senders
    post as staff, and the audience watches without signing in.
    """
    workers = target.max_workers
    bench.say(f"{target.label}, {workers} worker(s), an audience of {BROADCAST_VIEWERS}")
    target.start(workers)
    try:
        target.wait_idle()
        base_rss = target.rss_bytes()
        if isinstance(target, Site):
            spec = target.broadcast_room(BROADCAST_SENDERS)
        else:
            spec = target.spec(target.room())
        opened = bench.pool.open(spec, BROADCAST_VIEWERS, target.open_concurrency)
        bench.say(
            f"  {BROADCAST_VIEWERS} sockets open in {opened['seconds']:.1f} s"
            f" ({opened['refused']} refused and retried)"
        )
        target.wait_idle()
        time.sleep(0.5)
        rss = target.rss_bytes()
        entry: dict[str, Any] = {
            "target": target.label,
            "workers": workers,
            "viewers": BROADCAST_VIEWERS,
            "senders": BROADCAST_SENDERS,
            "open_seconds": opened["seconds"],
            "bytes_per_viewer": (rss - base_rss) / BROADCAST_VIEWERS,
            "steps": [],
        }
        for rate in BROADCAST_RATES:
            step = bench.measure(
                target, rate, senders=BROADCAST_SENDERS, seconds=BROADCAST_STEP_SECONDS
            )
            step["delivered_messages_per_s"] = step["delivered_per_s"]
            entry["steps"].append(step)
        bench.results["broadcast"].append(entry)
    finally:
        bench.pool.forget()
        target.stop()
