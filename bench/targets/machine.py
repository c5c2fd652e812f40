"""What a run is described by: the machine it ran on, and the versions its results depend on."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from typing import Any

import psycopg
import redis

from targets.base import POSTGRES_URL, REDIS_URL
from targets.baselines import NODE_WS


def versions() -> dict[str, str]:
    """The versions the results depend on."""
    found: dict[str, str] = {"python": platform.python_version()}
    for package in (
        "Django",
        "channels",
        "channels-redis",
        "daphne",
        "Twisted",
        "redis",
        "psycopg",
        "websockets",
    ):
        found[package] = metadata.version(package)
    node = shutil.which("node")
    if node:
        result = subprocess.run(  # noqa: S603
            [node, "--version"], capture_output=True, text=True, check=False
        )
        found["node"] = result.stdout.strip()
    ws_package = NODE_WS / "node_modules" / "ws" / "package.json"
    if ws_package.exists():
        found["ws"] = json.loads(ws_package.read_text())["version"]
    found["redis-server"] = str(redis.Redis.from_url(REDIS_URL).info()["redis_version"])
    with psycopg.connect(f"{POSTGRES_URL}/postgres") as connection:
        row = connection.execute("SHOW server_version").fetchone()
        found["postgresql"] = str(row[0]) if row else "?"
    return found


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory and kernel of this machine."""
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(total_kib / 2**20, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
    }
