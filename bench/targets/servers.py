"""Processes of the run's own: a server under test on a free port, and a redis-server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: dict[str, str]) -> dict[str, str]:
    """This environment without the Django, site and database settings of the
    session that runs the bench, then `settings`, for a server under test."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CHAT_", "DATABASE_URL"))
    }
    return {**env, "PYTHONUNBUFFERED": "1", **settings}


class Server:
    """One server process on its own port, with its log in `log_dir`."""

    def __init__(
        self, name: str, command: list[str], cwd: Path, env: dict[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.port = free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.cwd = cwd
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, health_path: str | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (our own command line)
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            if self.answers(health_path):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start: {self.log_tail()}")

    def answers(self, health_path: str | None) -> bool:
        try:
            if health_path is None:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            url = f"http://127.0.0.1:{self.port}{health_path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class RedisServer:
    """A redis-server of the run's own on a free port of 127.0.0.1: empty, without
    persistence, stopped at the end of its scenario."""

    # INFO commands that one `stats` sends, counted by the server like any other.
    STATS_CALLS = 2

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client: redis.Redis | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.log_path.parent)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (our own command line)
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=nice_default
            )
        self.client = redis.Redis.from_url(self.url, socket_timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start") from None
                time.sleep(0.05)

    def stats_reset(self) -> None:
        """CONFIG RESETSTAT: the command counts start again from zero."""
        assert self.client is not None
        self.client.config_resetstat()

    def stats(self) -> dict[str, Any]:
        """Calls and microseconds per command since the last reset (the commands that
        scripts run included), and the server's CPU seconds since it started."""
        assert self.client is not None
        commands = self.client.info("commandstats")
        cpu = self.client.info("cpu")
        return {
            "calls": {
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in commands.items()
            },
            "usec": {
                name.removeprefix("cmdstat_"): int(value["usec"])
                for name, value in commands.items()
            },
            "cpu_seconds": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        }

    def stats_between(self, early: dict[str, Any], late: dict[str, Any]) -> dict[str, Any]:
        """What the server did between two `stats`: calls and microseconds per command,
        less the bench's own INFO (the site's workers send INFO too), and CPU seconds."""
        calls = {name: late["calls"][name] - early["calls"].get(name, 0) for name in late["calls"]}
        calls["info"] = calls.get("info", 0) - self.STATS_CALLS
        usec = {name: late["usec"][name] - early["usec"].get(name, 0) for name in late["usec"]}
        return {
            "by_command": {name: count for name, count in calls.items() if count > 0},
            "usec_by_command": {name: value for name, value in usec.items() if value > 0},
            "cpu_seconds": late["cpu_seconds"] - early["cpu_seconds"],
        }

    def keys_by_kind(self, prefix: str) -> dict[str, int]:
        """This server's keys under `prefix`, counted by kind: what lives on this shard."""
        assert self.client is not None
        counts: dict[str, int] = {}
        for raw in self.client.scan_iter(f"{prefix}*", count=1000):
            kind = key_kind(raw.decode(), prefix)
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None


def nice_default() -> None:
    """Back to niceness 0 (in a child, before its exec): the bench runs its own processes
    ahead of the rest (run.py), while Redis, even one of the run's own, runs as the
    shared Redis and PostgreSQL do."""
    os.nice(-os.nice(0))


def key_kind(key: str, prefix: str) -> str:
    """What a key of the site is, from its name (chat/platform/redis/keys.py, channels-redis' own):
    `group:room`, `group:user`, `presence`, `rate`, `queue` (a worker's), `workers` ..."""
    rest = key.removeprefix(prefix).lstrip(":")
    if rest.startswith("group:"):
        return "group:" + rest.removeprefix("group:").split("-", 1)[0]
    if rest.startswith("specific."):
        return "queue"
    return rest.split(":", 1)[0]
