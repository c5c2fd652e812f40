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
The scenarios are in `scenarios/`, by family, built of `measuring.py`'s step and
capacity search; `report/` writes the results' README and plots.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from loadgen.pool import DRAIN_SECONDS, ClientPool
from measuring import (
    BISECTIONS,
    CLIENT_PROCESSES,
    MAX_STEPS,
    MIN_RATE,
    P99_LIMIT_MS,
    SENDERS,
    STEP_SECONDS,
    Steps,
)
from scenarios import audience, rooms, shards, site_only
from targets.base import BENCH
from targets.baselines import Node, Tutorial
from targets.machine import machine, versions
from targets.proc import machine_busy_seconds
from targets.site import Site

SCENARIOS = frozenset({"rooms", "small-rooms", "broadcast", "shards", "notes", "history", "search"})


class Bench(Steps):
    """The targets, the scenarios and the results of one run (`make bench`)."""

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
                "room_sizes": list(rooms.ROOM_SIZES),
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
                "idle_sockets": list(rooms.IDLE_SOCKETS),
                "storm_clients": rooms.STORM_CLIENTS,
                "history_messages": site_only.HISTORY_MESSAGES,
                "site_database": database,
                "small_rooms": rooms.SMALL_ROOMS,
                "small_room_size": rooms.SMALL_ROOM_SIZE,
                "broadcast_viewers": audience.BROADCAST_VIEWERS,
                "broadcast_senders": audience.BROADCAST_SENDERS,
                "broadcast_rates": list(audience.BROADCAST_RATES),
                "broadcast_step_seconds": audience.BROADCAST_STEP_SECONDS,
                "shards": shards.SHARDS,
                "shard_rooms": shards.SHARD_ROOMS,
                "shard_room_size": shards.SHARD_ROOM_SIZE,
                "shard_workers": shards.SHARD_WORKERS,
                "shard_step_seconds": shards.SHARD_STEP_SECONDS,
                "shard_count_seconds": list(shards.SHARD_COUNT_SECONDS),
                "shard_balance": shards.SHARD_BALANCE,
                "scenarios_run": sorted(only),
                "targets_run": [target.label for target in self.targets],
                # The site's setting, as its workers inherit it from this environment.
                "batch_tick_ms": int(os.environ.get("CHAT_BATCH_TICK_MS", "50")),
                "history_requests": site_only.HISTORY_REQUESTS,
                "site_users": Site.users,
                "nice": os.nice(0),
                "site_env": {"CHAT_RATE_LIMIT": "1000000/1s", "CHAT_TOKEN_TTL": "7200"},
            },
        }

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
                    rooms.scenarios(self, target)
                if "small-rooms" in self.only and target is not self.node:
                    rooms.small_rooms(self, target)
                if "broadcast" in self.only:
                    audience.broadcast(self, target)
            if "shards" in self.only and self.site in self.targets:
                shards.shards(self)
            if "notes" in self.only and self.site in self.targets:
                site_only.shared_notes(self)
            history = "history" in self.only and self.site in self.targets
            if not self.quick and history and not self.site.sqlite:
                site_only.history(self)
            if not self.quick and "search" in self.only and not self.site.sqlite:
                site_only.message_search(self)
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
