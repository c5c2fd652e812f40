"""`make run` with nothing set, as a newcomer runs it, and an HTTP client for people.

`MakeRun` starts `deploy/run.sh` (supervisord, SQLite, a private Redis, two
daphne workers sharing one port) in a clean copy of the tree: the files git
would commit, with no database, no `var/` and no collected static files; only
the virtualenv is shared, so that nothing is installed again.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# What the settings read: unset, as on a newcomer's machine.
SITE_VARIABLES = ("DJANGO_", "CHAT_", "PYTEST")
SITE_NAMES = {"DATABASE_URL", "REDIS_URL", "HOST", "WORKERS", "DJANGO_SETTINGS_MODULE"}
# Lines that fail the run: the site logged an error, or something crashed.
PROBLEM = re.compile(r"\bERROR\b|Traceback|Exception inside application")


def tree_copy(target: Path) -> None:
    """The files of the working tree that git would commit (tracked or new), and nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # listed but deleted in the working tree: not part of it
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))


class MakeRun:
    """`deploy/run.sh` in a clean copy of the tree, on ports of its own."""

    def __init__(self, base: Path) -> None:
        self.root = base / "checkout"
        self.port = free_port()
        self.redis_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "make-run.log"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(SITE_VARIABLES) and name not in SITE_NAMES
        }
        # Ports of its own, so that it never meets another run; all else is the default.
        env.update(PORT=str(self.port), REDIS_PORT=str(self.redis_port))
        return env

    def start(self) -> None:
        self.root.mkdir(parents=True)
        tree_copy(self.root)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["deploy/run.sh"],
                cwd=self.root,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()[-3000:]
            if len(self.worker_pids()) == 2 and self.log().count("Listening on TCP address") == 2:
                try:
                    with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                        if response.status == 200:
                            return
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            time.sleep(0.2)
        raise AssertionError(f"make run did not come up: {self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # supervisord stops what it started
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        """The run's output: supervisord's, the workers' and the private Redis's."""
        parts = [self.log_path]
        parts += [self.root / "var" / name for name in ("supervisord.log", "redis.log")]
        return "\n".join(path.read_text(errors="replace") for path in parts if path.exists())

    def problems(self) -> list[str]:
        return [line for line in self.log().splitlines() if PROBLEM.search(line)]

    def manage(self, *args: str, **env: str) -> str:
        """`.venv/bin/python manage.py ...` in the checkout, as the README says to run it."""
        result = subprocess.run(
            [".venv/bin/python", "manage.py", *args],
            cwd=self.root,
            env={**self.env(), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the run's SQLite database directly (WAL lets a reader in at any time)."""
        with sqlite3.connect(self.root / "db.sqlite3", timeout=10) as connection:
            return connection.execute(sql, params).fetchall()

    # --- which worker holds a connection ----------------------------------------------------

    def worker_pids(self) -> list[int]:
        """The daphne workers supervisord started for this run."""
        if self.process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
                in_run = os.getsid(int(entry.name)) == self.process.pid
            except (OSError, ProcessLookupError):
                continue
            if in_run and b"chat.platform.server" in command:
                pids.append(int(entry.name))
        return sorted(pids)

    def worker_of(self, client_port: int) -> int:
        """The pid of the worker serving the client's TCP connection from `client_port`."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == self.port and remote_port == client_port:
                    inodes.add(fields[9])
        for pid in self.worker_pids():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        raise AssertionError(f"no worker holds the connection from port {client_port}")


class Visitor:
    """One person's HTTP client: cookies, CSRF tokens, forms and JSON."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, text, the URL it ended at after redirects)."""
        try:
            with self.opener.open(self.base_url + path, timeout=10) as response:
                return response.status, response.read().decode(), response.url
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.url

    def form(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        """Fetch the form at `path` and submit it with `fields` and its CSRF token."""
        status, page, _ = self.get(path)
        assert status == 200, (path, status)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, f"no CSRF token in the form at {path}"
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": match[1], **fields}).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method="POST")
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode(), response.url
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.url

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def get_json(self, path: str) -> Any:
        status, text, _ = self.get(path)
        assert status == 200, (path, status, text[:300])
        return json.loads(text)
