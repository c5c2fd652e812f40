"""One measured step, with every process's CPU time around it, and the capacity search
made of steps: what every scenario is built from."""

from __future__ import annotations

import math
import time
from typing import Any

from loadgen.pool import ClientPool
from targets.base import Target
from targets.proc import machine_busy_seconds, process_cpu_seconds

SENDERS = 10  # sockets that send, each a different user on the site
STEP_SECONDS = 2.0
P99_LIMIT_MS = 250.0
MAX_STEPS = 11  # per search, bisection included
BISECTIONS = 3
MIN_RATE = 0.25
CLIENT_PROCESSES = 2
# Past this point of the run, searches bisect once instead of BISECTIONS times:
# the whole of `make bench` is to stay within 15 minutes on 2 cores.
HURRY_AFTER_SECONDS = 8 * 60


def passes(step: dict[str, Any]) -> bool:
    """Capacity's test: nothing lost or late beyond the drain, and p99 within the limit."""
    return (
        step["late_or_lost"] == 0
        and step["p99_ms"] is not None
        and step["p99_ms"] <= P99_LIMIT_MS
        and not step["unexpected_closes"]
    )


def rounded(rate: float) -> float:
    """A rate to three significant digits, so that the tables read well."""
    if rate <= 0:
        return rate
    digits = 2 - math.floor(math.log10(rate))
    return round(rate, digits)


class Steps:
    """The run's client processes and results: one measured step, and the capacity search.

    run.Bench adds the targets, the scenarios and the whole run.
    """

    pool: ClientPool
    results: dict[str, Any]
    started: float  # time.monotonic() when the run began: searches hurry after a while

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def measure(
        self,
        target: Target,
        rate: float,
        senders: int = SENDERS,
        seconds: float = STEP_SECONDS,
    ) -> dict[str, Any]:
        client_pids = self.pool.pids
        before = self.cpu(target, client_pids)
        step = self.pool.step(rate, seconds, senders)
        after = self.cpu(target, client_pids)
        wall = after["wall"] - before["wall"]
        server = after["server"] - before["server"]
        client = after["client"] - before["client"]
        machine = after["machine"] - before["machine"]
        step.update(
            {
                "passed": passes(step),
                "server_cpu_cores": server / wall,
                "server_cpu_us_per_delivery": server / step["delivered"] * 1e6
                if step["delivered"]
                else None,
                "client_cpu_cores": client / wall,
                "machine_cpu_cores": machine / wall,
                # Redis, PostgreSQL and anything else running on the machine.
                "rest_cpu_cores": max(0.0, machine - server - client) / wall,
            }
        )
        p99 = f"{step['p99_ms']:.0f}" if step["p99_ms"] is not None else "-"
        self.say(
            f"  {rate:>9g}/s  {'pass' if step['passed'] else 'FAIL'}  p99 {p99} ms"
            f"  late/lost {step['late_or_lost']}  lost {step['lost']}"
            f"  server {step['server_cpu_cores']:.2f} client {step['client_cpu_cores']:.2f}"
            f" rest {step['rest_cpu_cores']:.2f} cores"
        )
        if not step["passed"]:
            self.pool.settle()  # let a backlog drain before the next step
        if step["unexpected_closes"]:
            # The server closed sockets (the site's 4012 when its layer looks
            # lost): they come back, as clients would, before the next step.
            target.wait_idle()
            step["reopened"] = self.pool.reopen(target.open_concurrency)
            self.say(f"  reopened {step['reopened']} sockets the server had closed")
        return step

    def cpu(self, target: Target, client_pids: list[int]) -> dict[str, float]:
        return {
            "wall": time.monotonic(),
            "server": target.cpu_seconds(),
            "client": sum(process_cpu_seconds(pid) for pid in client_pids),
            "machine": machine_busy_seconds(),
        }

    def search(
        self,
        target: Target,
        room_size: int,
        hint: float | None,
        seconds: float = STEP_SECONDS,
        hurry: bool | None = None,
        what: str | None = None,
    ) -> tuple[float | None, list[dict[str, Any]]]:
        """The highest passing rate; every step taken to find it.

        `hurry` (bisect once) is decided by the time the run has taken, unless given;
        `what` names the search in the report's list of hurried ones.
        """
        rate = rounded(max(hint or 0.0, MIN_RATE, target.start_deliveries / room_size))
        steps: list[dict[str, Any]] = []
        good: float | None = None
        bad: float | None = None
        while len(steps) < MAX_STEPS:
            step = self.measure(target, rate, seconds=seconds)
            steps.append(step)
            if step["passed"]:
                good = rate
                if bad is not None:
                    break
                rate = rounded(rate * 2)
            else:
                bad = rate
                if good is not None:
                    break
                if rate <= MIN_RATE:
                    return None, steps
                rate = max(MIN_RATE, rounded(rate / 2))
        if hurry is None:
            hurry = time.monotonic() - self.started > HURRY_AFTER_SECONDS
        if hurry:
            self.results["hurried"].append(what or f"{target.label} room of {room_size}")
        for _ in range(1 if hurry else BISECTIONS):
            if good is None or bad is None or len(steps) >= MAX_STEPS:
                break
            middle = rounded(math.sqrt(good * bad))
            if middle <= good * 1.05 or middle >= bad:
                break
            step = self.measure(target, middle, seconds=seconds)
            steps.append(step)
            if step["passed"]:
                good = middle
            else:
                bad = middle
        return good, steps
