"""`make bench`: every scenario against the site and both baselines, then the dated report.

    .venv/bin/python bench/run.py [--out bench/results/YYYY-MM-DD] [--quick]

For each target (node-ws, the Channels tutorial, the site), each worker count
(1 and 2; node-ws is one process) and each room size (2, 100, 1000 sockets):
the capacity, found by doubling the offered rate until a step fails and then
bisecting; a step at half of it; and, for the site, a step at the tutorial's
capacity. In the room of 1,000 with the most workers, before its search:
resident memory per idle socket at 1,000 and 5,000 sockets and a reconnect
storm of 1,000. Then an audience: 5,000 sockets in one room on 2 workers (the
site's a broadcast room, watched without signing in), at 1, 10 and 50
messages a second. Then the site on 3 Redis shards against the site on 1 (Redis
servers of the run's own, 1,000 rooms of 2 on 3 workers): capacity, and each
shard's commands in one step at the same rate for both. Then the site's
history API on a room of 1,000,000 messages,
and last search on 1,000,000 messages against the naive search (bench/search.py,
in a process and a database of its own; its own README in <out>/search/).
The `notes` scenario (bench/notes.py): 50 editors typing into one room's shared
notes on 2 workers, each keystroke's arrival at every other editor.
`report/` writes the results' README and plots.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import notes
import report
from loadgen.pool import DRAIN_SECONDS, ClientPool
from report.text import rate_text
from targets.base import BENCH, Target
from targets.baselines import Node, Tutorial
from targets.machine import machine, versions
from targets.proc import machine_busy_seconds, process_cpu_seconds
from targets.servers import RedisServer
from targets.site import Site

ROOM_SIZES = (2, 100, 1000)
WORKERS = (1, 2)
SENDERS = 10  # sockets that send, each a different user on the site
STEP_SECONDS = 2.0
P99_LIMIT_MS = 250.0
SCENARIOS = frozenset({"rooms", "small-rooms", "broadcast", "shards", "notes", "history", "search"})
MAX_STEPS = 11  # per search, bisection included
BISECTIONS = 3
MIN_RATE = 0.25
CLIENT_PROCESSES = 2
IDLE_SOCKETS = (1000, 5000)
STORM_CLIENTS = 1000
# The audience scenario: a broadcast room of this many sockets on 2 workers,
# `BROADCAST_SENDERS` of them publishing, at each of these rates.
BROADCAST_VIEWERS = 5000
BROADCAST_SENDERS = 5
BROADCAST_RATES = (1.0, 10.0, 50.0)
# Longer steps than the searches': at 1 message/s a 2-second step has 2 messages.
BROADCAST_STEP_SECONDS = 6.0
# Many small rooms: this many rooms of this many sockets, every room chatting at once.
SMALL_ROOMS = 200
SMALL_ROOM_SIZE = 5
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
HISTORY_MESSAGES = 1_000_000
HISTORY_REQUESTS = 30
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


def shard_count_seconds(rate: float) -> float:
    """How long the counted step of the shards scenario lasts at `rate` (messages/s in all):
    a whole number of rounds of one message from every room, if a round is short enough."""
    low, high = SHARD_COUNT_SECONDS
    round_seconds = SHARD_ROOMS / rate
    if round_seconds > high:
        return high
    # Half a message short of the next round, so that no rounding lets one more in.
    return math.ceil(low / round_seconds) * round_seconds - 0.5 / rate


def rounded(rate: float) -> float:
    """A rate to three significant digits, so that the tables read well."""
    if rate <= 0:
        return rate
    digits = 2 - math.floor(math.log10(rate))
    return round(rate, digits)


class Bench:
    def __init__(
        self,
        out: Path,
        quick: bool,
        only: set[str] = SCENARIOS,
        labels: set[str] | None = None,
        database: str = "postgres",
    ) -> None:
        self.out = out
        self.quick = quick
        self.only = only
        self.database = database
        self.log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
        self.started = time.monotonic()
        self.pool = ClientPool(CLIENT_PROCESSES)
        self.node = Node(self.log_dir)
        self.tutorial = Tutorial(self.log_dir)
        self.site = Site(self.log_dir, database)
        self.targets = [
            target
            for target in (self.node, self.tutorial, self.site)
            if labels is None or target.label in labels
        ]
        self.results: dict[str, Any] = {
            "scenarios": [],
            "small_rooms": [],
            "broadcast": [],
            "shards": [],
            "notes": None,
            "memory": [],
            "history": None,
            "search": None,
            "log_warnings": {},
            "hurried": [],
            "settings": {
                "room_sizes": list(ROOM_SIZES),
                "senders": SENDERS,
                "step_seconds": STEP_SECONDS,
                "drain_seconds": DRAIN_SECONDS,
                "p99_limit_ms": P99_LIMIT_MS,
                "start_deliveries_per_s": {
                    target.label: target.start_deliveries
                    for target in (self.node, self.tutorial, self.site)
                },
                "max_steps": MAX_STEPS,
                "min_rate": MIN_RATE,
                "bisections": BISECTIONS,
                "client_processes": CLIENT_PROCESSES,
                "idle_sockets": list(IDLE_SOCKETS),
                "storm_clients": STORM_CLIENTS,
                "history_messages": HISTORY_MESSAGES,
                "site_database": database,
                "small_rooms": SMALL_ROOMS,
                "small_room_size": SMALL_ROOM_SIZE,
                "broadcast_viewers": BROADCAST_VIEWERS,
                "broadcast_senders": BROADCAST_SENDERS,
                "broadcast_rates": list(BROADCAST_RATES),
                "broadcast_step_seconds": BROADCAST_STEP_SECONDS,
                "shards": SHARDS,
                "shard_rooms": SHARD_ROOMS,
                "shard_room_size": SHARD_ROOM_SIZE,
                "shard_workers": SHARD_WORKERS,
                "shard_step_seconds": SHARD_STEP_SECONDS,
                "shard_count_seconds": list(SHARD_COUNT_SECONDS),
                "shard_balance": SHARD_BALANCE,
                "scenarios_run": sorted(only),
                "targets_run": [target.label for target in self.targets],
                # The site's setting, as its workers inherit it from this environment.
                "batch_tick_ms": int(os.environ.get("CHAT_BATCH_TICK_MS", "50")),
                "history_requests": HISTORY_REQUESTS,
                "site_users": Site.users,
                "nice": os.nice(0),
                "site_env": {"CHAT_RATE_LIMIT": "1000000/1s", "CHAT_TOKEN_TTL": "7200"},
            },
        }

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # --- one step, with every process's CPU time around it

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

    # --- capacity

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

    def scenarios(self, target: Target) -> None:
        capacity_1w: dict[int, float | None] = {}
        for workers in WORKERS:
            previous: tuple[int, float] | None = None  # (room size, capacity)
            if workers > target.max_workers:
                continue
            target.start(workers)
            try:
                for room_size in ROOM_SIZES:
                    self.say(f"{target.label}, {workers} worker(s), room of {room_size}")
                    # Memory and the storm are measured once per target, in the
                    # largest room with the most workers: those sockets are open anyway.
                    memory_here = room_size == STORM_CLIENTS and workers == target.max_workers
                    base_rss = target.rss_bytes()
                    spec = target.spec(target.room())
                    opened = self.pool.open(spec, room_size, target.open_concurrency)
                    self.say(
                        f"  {room_size} sockets open in {opened['seconds']:.1f} s"
                        f" ({opened['refused']} refused and retried {opened['refusals'][:1]})"
                    )
                    if memory_here:
                        self.memory(target, base_rss, workers)
                    target.wait_idle()
                    hint = capacity_1w.get(room_size) if workers > 1 else None
                    if hint is None and previous is not None:
                        # Half the previous room's deliveries a second: a likely pass.
                        hint = previous[1] * previous[0] / room_size / 2
                    capacity, steps = self.search(target, room_size, hint)
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
                        self.say(f"  capacity {capacity:g}/s; at half of it:")
                        scenario["half"] = self.measure(target, rounded(capacity / 2))
                    tutorial = self.scenario_of("tutorial", workers, room_size)
                    if target is self.site and tutorial is not None:
                        # Below the lowest rate, the tutorial's p99 there is compared.
                        rate = tutorial["capacity"] or MIN_RATE
                        self.say(f"  at the tutorial's capacity, {rate:g}/s:")
                        scenario["at_tutorial_capacity"] = self.measure(target, rate)
                    self.results["scenarios"].append(scenario)
                    self.pool.forget()
                    target.wait_idle()
            finally:
                self.pool.forget()
                target.stop()
        self.results["log_warnings"][target.label] = target.log_warnings()

    def scenario_of(self, label: str, workers: int, room_size: int) -> dict[str, Any] | None:
        for scenario in self.results["scenarios"]:
            if (scenario["target"], scenario["workers"], scenario["room_size"]) == (
                label,
                workers,
                room_size,
            ):
                return scenario
        return None

    # --- idle memory and the reconnect storm

    def memory(self, target: Target, base_rss: int, workers: int) -> None:
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
            if count > self.pool.sockets:
                # The rest idle in a room of their own: the search's room stays as it was.
                more = count - self.pool.sockets
                opened = self.pool.open(target.spec(target.room()), more, target.open_concurrency)
                entry["open_refused"] = opened["refused"]
                self.say(
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
            self.say(f"  {count} idle sockets: {(rss - base_rss) / count / 1024:.1f} KiB each")
        self.pool.trim(STORM_CLIENTS)
        target.wait_idle()
        self.pool.close_all()
        target.wait_idle()
        entry["storm"] = storm = self.pool.storm(target.open_concurrency)
        self.say(
            f"  storm of {STORM_CLIENTS}: {storm['handshakes_per_s']:.0f} handshakes/s,"
            f" {storm['failed']} refused {storm['failures'][:1]}"
        )
        self.results["memory"].append(entry)

    # --- many small rooms, all chatting: the load of a real site

    def small_rooms(self, target: Target) -> None:
        """SMALL_ROOMS rooms of SMALL_ROOM_SIZE sockets on the most workers; the highest
        total rate (one sender per room) with p99 within the limit.

        node-ws has no rooms, so it sits this one out.
        """
        workers = target.max_workers
        sockets = SMALL_ROOMS * SMALL_ROOM_SIZE
        self.say(f"{target.label}, {workers} worker(s), {SMALL_ROOMS} rooms of {SMALL_ROOM_SIZE}")
        target.start(workers)
        try:
            target.wait_idle()
            spec = target.rooms_spec(SMALL_ROOMS, SMALL_ROOM_SIZE)
            opened = self.pool.open(spec, sockets, target.open_concurrency)
            self.say(f"  {sockets} sockets open in {opened['seconds']:.1f} s")
            target.wait_idle()
            capacity, steps = self.search(target, SMALL_ROOM_SIZE, None)
            entry: dict[str, Any] = {
                "target": target.label,
                "workers": workers,
                "rooms": SMALL_ROOMS,
                "room_size": SMALL_ROOM_SIZE,
                "capacity": capacity,
                "steps": steps,
            }
            if capacity:
                self.say(f"  capacity {capacity:g} messages/s in all")
            self.results["small_rooms"].append(entry)
        finally:
            self.pool.forget()
            target.stop()

    # --- an audience: thousands watching one room

    def broadcast(self, target: Target) -> None:
        """BROADCAST_VIEWERS sockets in one room on the most workers; steps at each rate.

        On the site the room is a broadcast room open to viewers: its senders
        post as staff, and the audience watches without signing in.
        """
        workers = target.max_workers
        self.say(f"{target.label}, {workers} worker(s), an audience of {BROADCAST_VIEWERS}")
        target.start(workers)
        try:
            target.wait_idle()
            base_rss = target.rss_bytes()
            if isinstance(target, Site):
                spec = target.broadcast_room(BROADCAST_SENDERS)
            else:
                spec = target.spec(target.room())
            opened = self.pool.open(spec, BROADCAST_VIEWERS, target.open_concurrency)
            self.say(
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
                step = self.measure(
                    target, rate, senders=BROADCAST_SENDERS, seconds=BROADCAST_STEP_SECONDS
                )
                step["delivered_messages_per_s"] = step["delivered_per_s"]
                entry["steps"].append(step)
            self.results["broadcast"].append(entry)
        finally:
            self.pool.forget()
            target.stop()

    # --- Redis shards: 3 against 1

    def shards(self) -> None:
        """The site on SHARDS Redis shards against the site on one, in the same run.

        Each on Redis servers of its own (fresh, no persistence), a fresh database
        and SHARD_WORKERS workers, with SHARD_ROOMS rooms of SHARD_ROOM_SIZE sockets
        all chatting: the capacity of each, searched as the other scenarios are; then
        one step at the same rate for both (half the capacity on one shard), each
        shard's command counts reset before it (CONFIG RESETSTAT) and read after it.
        """
        # Both searches bisect as often, wherever the scenario falls in the run.
        hurry = time.monotonic() - self.started > HURRY_AFTER_SECONDS
        rate: float | None = None
        sockets = SHARD_ROOMS * SHARD_ROOM_SIZE
        for count in (1, SHARDS):
            servers = [
                RedisServer(f"redis-shards{count}-{number}", self.log_dir)
                for number in range(count)
            ]
            site = Site(
                self.log_dir,
                self.database,
                redis_url=",".join(server.url for server in servers),
                name=f"shards{count}",
                users=sockets,
            )
            self.say(
                f"site on {count} Redis shard(s), {SHARD_WORKERS} workers,"
                f" {SHARD_ROOMS} rooms of {SHARD_ROOM_SIZE}"
            )
            try:
                for server in servers:
                    server.start()
                site.prepare()
                site.start(SHARD_WORKERS)
                spec = site.rooms_spec(SHARD_ROOMS, SHARD_ROOM_SIZE)
                opened = self.pool.open(spec, sockets, site.open_concurrency)
                self.say(f"  {sockets} sockets open in {opened['seconds']:.1f} s")
                site.wait_idle()
                capacity, steps = self.search(
                    site,
                    SHARD_ROOM_SIZE,
                    None,
                    seconds=SHARD_STEP_SECONDS,
                    hurry=hurry,
                    what=f"site on {count} Redis shard(s), {SHARD_ROOMS} rooms",
                )
                self.say(f"  capacity {rate_text(capacity)} messages/s in all")
                if rate is None:
                    rate = rounded((capacity or MIN_RATE) / 2)
                seconds = shard_count_seconds(rate)
                self.say(f"  {seconds:.1f} s at {rate:g}/s, each shard's commands counted:")
                site.wait_idle()
                for server in servers:
                    server.stats_reset()
                before = [server.stats() for server in servers]
                started = time.monotonic()
                counted = self.measure(site, rate, seconds=seconds)
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
                    self.say(
                        f"  shard {shard['shard']}: {shard['calls']:,} calls,"
                        f" {shard['cpu_seconds']:.2f} s CPU"
                    )
                self.results["shards"].append(
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
                self.pool.forget()
                site.stop()
                site.cleanup(redis_keys=False)
                for server in servers:
                    server.stop()

    # --- shared notes: 50 editors typing into one document

    def notes(self) -> None:
        """bench/notes.py against the site on 2 workers, each editor a user of its own."""
        site = Site(self.log_dir, self.database, name="notes", users=notes.EDITORS)
        self.say(
            f"site: {notes.EDITORS} editors typing into one room's notes, {notes.WORKERS} workers"
        )
        try:
            site.prepare()
            site.start(notes.WORKERS)
            site.wait_idle()
            slug = site.room()
            self.results["notes"] = {
                **notes.run(
                    ports=[server.port for server in site.servers],
                    tokens=site.tokens,
                    slug=slug,
                    database_url=site.database_url,
                    say=self.say,
                    cpu=lambda: (site.cpu_seconds(), machine_busy_seconds()),
                    settle=lambda: site.wait_idle(60.0),
                ),
                "log_warnings": site.log_warnings(),
            }
        finally:
            site.stop()
            site.cleanup()

    # --- the history API

    def history(self) -> None:
        self.say(f"site: history API on a room of {HISTORY_MESSAGES:,} messages")
        self.site.start(1)
        try:
            slug, load_seconds = self.site.fill_room(HISTORY_MESSAGES)
            self.say(f"  COPY of {HISTORY_MESSAGES:,} messages: {load_seconds:.1f} s")
            token = self.site.tokens[0]
            base = f"/api/rooms/{slug}/messages/"
            pages = {
                "newest": base,
                "middle": f"{base}?before={HISTORY_MESSAGES // 2}",
                "deep": f"{base}?before=1000",
            }
            result: dict[str, Any] = {"messages": HISTORY_MESSAGES, "load_seconds": load_seconds}
            for name, path in pages.items():
                self.site.get(path, token)  # the first request warms the worker
                seconds = [self.site.get(path, token) for _ in range(HISTORY_REQUESTS)]
                seconds.sort()
                result[name] = {
                    "path": path.replace(slug, "<slug>"),
                    "p50_ms": seconds[len(seconds) // 2] * 1000,
                    "p99_ms": seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000,
                    "max_ms": seconds[-1] * 1000,
                }
                self.say(f"  {name}: p50 {result[name]['p50_ms']:.1f} ms")
            self.results["history"] = result
        finally:
            self.site.stop()

    # --- search

    def message_search(self) -> None:
        """bench/search.py, writing into <out>/search/; a summary into the results."""
        self.say("search on 1,000,000 messages (bench/search.py)")
        folder = self.out / "search"
        subprocess.run(  # noqa: S603  (our own command line)
            [sys.executable, str(Path(__file__).with_name("search.py")), "--out", str(folder)],
            check=True,
        )
        found = json.loads((folder / "results.json").read_text())
        self.results["search"] = {
            "folder": "search",
            "messages": found["messages"],
            "settings": found["settings"],
            "kinds": found["kinds"],
        }

    # --- the whole run

    def run(self) -> None:
        started = self.started
        self.results["started"] = datetime.now().isoformat(timespec="seconds")
        self.results["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
        self.results["machine"] = machine()
        busy_start = machine_busy_seconds()
        try:
            self.say(f"logs in {self.log_dir}")
            for target in self.targets:
                target.prepare()
            self.results["versions"] = versions()
            for target in self.targets:
                if "rooms" in self.only:
                    self.scenarios(target)
                if "small-rooms" in self.only and target is not self.node:
                    self.small_rooms(target)
                if "broadcast" in self.only:
                    self.broadcast(target)
            if "shards" in self.only and self.site in self.targets:
                self.shards()
            if "notes" in self.only and self.site in self.targets:
                self.notes()
            history = "history" in self.only and self.site in self.targets
            if not self.quick and history and not self.site.sqlite:
                self.history()
            if not self.quick and "search" in self.only and not self.site.sqlite:
                self.message_search()
        except BaseException as error:
            # What was measured up to here is still written, marked unfinished.
            self.results["error"] = repr(error)
            raise
        finally:
            self.pool.close()
            for target in (self.node, self.tutorial, self.site):
                target.stop()
                target.cleanup()
            elapsed = time.monotonic() - started
            self.results["finished"] = datetime.now().isoformat(timespec="seconds")
            self.results["duration_s"] = elapsed
            self.results["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
            self.results["machine_cpu_cores_mean"] = (machine_busy_seconds() - busy_start) / elapsed
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "results.json").write_text(json.dumps(self.results, indent=1))
            report.write(self.results, self.out)
            self.say(f"done in {elapsed / 60:.1f} min: {self.out / 'README.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH / "results" / date.today().isoformat(),
        help="the results folder (default: bench/results/<today>)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the history API and search (1,000,000 messages each)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(SCENARIOS),
        default=sorted(SCENARIOS),
        help="run these scenarios alone (the report shows what was run)",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=["node-ws", "tutorial", "site"],
        help="measure these targets alone (a run for the record measures all three)",
    )
    parser.add_argument(
        "--site-database",
        choices=["postgres", "sqlite"],
        default="postgres",
        help="the site's database: PostgreSQL as deployed, or SQLite as `make run` has it",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite README.md and the plots from the folder's results.json",
    )
    args = parser.parse_args()
    if args.report_only:
        report.write(json.loads((args.out / "results.json").read_text()), args.out)
        return
    try:
        # Ahead of whatever else runs on the machine (the client processes and
        # the servers inherit it); Redis and PostgreSQL keep their own.
        os.nice(-10)
    except PermissionError:
        print("running at normal priority (raising it needs root)", flush=True)
    labels = set(args.targets) if args.targets else None
    Bench(args.out, args.quick, set(args.only), labels, args.site_database).run()


if __name__ == "__main__":
    main()
