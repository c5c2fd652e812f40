"""The scenarios of the site alone: its shared notes, its history API, its search."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import notes
from targets.base import BENCH
from targets.proc import machine_busy_seconds
from targets.site import Site

if TYPE_CHECKING:
    from run import Bench

HISTORY_MESSAGES = 1_000_000
HISTORY_REQUESTS = 30


def shared_notes(bench: Bench) -> None:
    """bench/notes.py against the site on 2 workers, each editor a user of its own."""
    site = Site(bench.log_dir, bench.database, name="notes", users=notes.EDITORS)
    bench.say(
        f"site: {notes.EDITORS} editors typing into one room's notes, {notes.WORKERS} workers"
    )
    try:
        site.prepare()
        site.start(notes.WORKERS)
        site.wait_idle()
        slug = site.room()
        bench.results["notes"] = {
            **notes.run(
                ports=[server.port for server in site.servers],
                tokens=site.tokens,
                slug=slug,
                database_url=site.database_url,
                say=bench.say,
                cpu=lambda: (site.cpu_seconds(), machine_busy_seconds()),
                settle=lambda: site.wait_idle(60.0),
            ),
            "log_warnings": site.log_warnings(),
        }
    finally:
        site.stop()
        site.cleanup()


def history(bench: Bench) -> None:
    bench.say(f"site: history API on a room of {HISTORY_MESSAGES:,} messages")
    bench.site.start(1)
    try:
        slug, load_seconds = bench.site.fill_room(HISTORY_MESSAGES)
        bench.say(f"  COPY of {HISTORY_MESSAGES:,} messages: {load_seconds:.1f} s")
        token = bench.site.tokens[0]
        base = f"/api/rooms/{slug}/messages/"
        pages = {
            "newest": base,
            "middle": f"{base}?before={HISTORY_MESSAGES // 2}",
            "deep": f"{base}?before=1000",
        }
        result: dict[str, Any] = {"messages": HISTORY_MESSAGES, "load_seconds": load_seconds}
        for name, path in pages.items():
            bench.site.get(path, token)  # the first request warms the worker
            seconds = [bench.site.get(path, token) for _ in range(HISTORY_REQUESTS)]
            seconds.sort()
            result[name] = {
                "path": path.replace(slug, "<slug>"),
                "p50_ms": seconds[len(seconds) // 2] * 1000,
                "p99_ms": seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000,
                "max_ms": seconds[-1] * 1000,
            }
            bench.say(f"  {name}: p50 {result[name]['p50_ms']:.1f} ms")
        bench.results["history"] = result
    finally:
        bench.site.stop()


def message_search(bench: Bench) -> None:
    """bench/search.py, writing into <out>/search/; a summary into the results."""
    bench.say("search on 1,000,000 messages (bench/search.py)")
    folder = bench.out / "search"
    subprocess.run(  # noqa: S603  (our own command line)
        [sys.executable, str(BENCH / "search.py"), "--out", str(folder)],
        check=True,
    )
    found = json.loads((folder / "results.json").read_text())
    bench.results["search"] = {
        "folder": "search",
        "messages": found["messages"],
        "settings": found["settings"],
        "kinds": found["kinds"],
    }
