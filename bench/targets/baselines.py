"""The baselines the site is measured against: the Channels tutorial and the ws broadcast server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from targets.base import BENCH, REDIS_URL, SECRET_KEY, Target
from targets.servers import Server, server_env

TUTORIAL = BENCH / "baselines" / "tutorial"
NODE_WS = BENCH / "baselines" / "node-ws"
DAPHNE = str(Path(sys.executable).with_name("daphne"))


class Tutorial(Target):
    """The Channels tutorial's chat (bench/baselines/tutorial), served by daphne."""

    kind = "tutorial"
    label = "tutorial"

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir)
        self.rooms: list[str] = []

    def room(self) -> str:
        room = super().room()
        self.rooms.append(room)
        return room

    def cleanup(self) -> None:
        # The layer's default prefix is shared by every tutorial-style app on
        # this Redis: only this run's groups go (members whose discard failed
        # would otherwise linger for the day of group_expiry).
        client = redis.Redis.from_url(REDIS_URL)
        for start in range(0, len(self.rooms), 500):
            rooms = self.rooms[start : start + 500]
            client.delete(*[f"asgi:group:chat_{room}" for room in rooms])

    def start(self, workers: int) -> None:
        env = server_env(
            {
                "DJANGO_SETTINGS_MODULE": "mysite.settings",
                "DJANGO_SECRET_KEY": SECRET_KEY,
                "REDIS_URL": REDIS_URL,
                "TUTORIAL_DB": str(self.log_dir / "tutorial.sqlite3"),
            }
        )
        for number in range(workers):
            command = [DAPHNE, "-b", "127.0.0.1", "-p", "{port}", "mysite.asgi:application"]
            server = Server(f"tutorial-{workers}w-{number}", command, TUTORIAL, env, self.log_dir)
            server.start()
            self.servers.append(server)


class Node(Target):
    """The ws README's broadcast server (bench/baselines/node-ws), one process."""

    kind = "node"
    label = "node-ws"
    start_deliveries = 4000.0
    max_workers = 1  # a single process: it has no way to broadcast across processes

    def prepare(self) -> None:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed for the node-ws baseline")
        subprocess.run(  # noqa: S603  (our own command line)
            [npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=NODE_WS, check=True
        )

    def start(self, workers: int) -> None:
        node = shutil.which("node") or "node"
        server = Server(
            "node-ws", [node, "server.js", "{port}"], NODE_WS, dict(os.environ), self.log_dir
        )
        server.start()
        self.servers.append(server)
