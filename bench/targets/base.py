"""What every target is: its workers, its rooms, their CPU and memory, their logs' warnings.

Also what the targets share: the paths, the shared Redis and PostgreSQL, one
secret key for the run.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from targets.proc import process_cpu_seconds, process_rss_bytes
from targets.servers import Server

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = "bench-secret-" + uuid.uuid4().hex * 2
# "<date> <time> LEVEL <message>", as daphne's and the site's logging write it.
LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL)\s+(.*)$")


class Target:
    """A chat server under test, with one or more worker processes."""

    kind = ""
    label = ""
    max_workers = 2

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[Server] = []
        # The start of its workers' log names: two targets of one kind keep apart.
        self.name = self.kind

    def prepare(self) -> None:
        """Once per run, before the first start."""

    def start(self, workers: int) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []

    def cleanup(self) -> None:
        """Once per run, after the last stop."""

    def room(self) -> str:
        """A fresh, empty room for one scenario."""
        return uuid.uuid4().hex

    def spec(self, room: str) -> dict[str, Any]:
        """What the client processes need to open this target's sockets."""
        return {"kind": self.kind, "ports": [s.port for s in self.servers], "room": room}

    def rooms_spec(self, rooms: int, room_size: int) -> dict[str, Any]:
        """The spec of `rooms` fresh rooms of `room_size` sockets each, in socket order."""
        names = [self.room() for _ in range(rooms)]
        return {**self.spec(names[0]), "rooms": names, "room_size": room_size}

    # Handshakes the client opens at once: the site's handshake makes three
    # database calls, all through one thread per worker, and each redis-py
    # pool refuses a 101st connection at once instead of waiting; opening
    # faster only turns into refusals (4013) during setup.
    open_concurrency = 48
    # A search's first rate, as deliveries a second (rate x room size): low
    # enough to pass, so that the search mostly climbs; a failing step costs
    # its duration and then the time its backlog takes to drain.
    start_deliveries = 250.0

    @property
    def pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    def wait_idle(self, cap: float = 15.0) -> float:
        """Wait until the workers are idle (under 5% of a core); the seconds waited."""
        started = time.monotonic()
        last = self.cpu_seconds()
        while time.monotonic() - started < cap:
            time.sleep(0.25)
            now = self.cpu_seconds()
            if now - last < 0.25 * 0.05 * max(1, len(self.servers)):
                break
            last = now
        return time.monotonic() - started

    def log_warnings(self) -> dict[str, int]:
        """WARNING and ERROR lines of the workers' logs, by logger and message start."""
        counts: dict[str, int] = {}
        for path in self.log_dir.glob(f"{self.name}-*.log"):
            for line in path.read_text(errors="replace").splitlines():
                found = LOG_LINE.match(line)
                if found:
                    # Numbers vary from line to line; the kind of message does not.
                    message = re.sub(r"\d+", "N", f"{found[1]} {found[2]}")[:110]
                    counts[message] = counts.get(message, 0) + 1
        return counts

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.pids)

    def rss_bytes(self) -> int:
        return sum(process_rss_bytes(pid) for pid in self.pids)
