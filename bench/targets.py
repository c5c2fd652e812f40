"""The servers under test: the site, the Channels tutorial, the ws broadcast server.

Each target starts its worker processes on free ports of 127.0.0.1, answers
what its sockets need (`spec`), makes a fresh room for every scenario, and
reads its workers' CPU time and resident memory from /proc. `RedisServer` is a
redis-server of the run's own (the shards scenario), with its command counts.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TUTORIAL = BENCH / "baselines" / "tutorial"
NODE_WS = BENCH / "baselines" / "node-ws"
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench-Pass-2026"  # noqa: S105  (bench users of a throw-away database)
SECRET_KEY = "bench-secret-" + uuid.uuid4().hex * 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# "<date> <time> LEVEL <message>", as daphne's and the site's logging write it.
LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL)\s+(.*)$")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Up to this many users, a site's tokens come from POST /api/token/, one password check
# each (PBKDF2, most of a second of CPU); past it, from chat.web.tokens in one shell.
TOKEN_REQUESTS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces: fields are counted after its ')'.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


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


class Site(Target):
    """The chat site on its real path: token auth, its database, Redis, presence, rate limits.

    PostgreSQL, as deployed; or SQLite (`database="sqlite"`), as `make run` has it.
    `redis_url` is the workers' REDIS_URL (several shards, comma-separated); `name`
    starts its workers' log names; sockets are spread over `users` users.
    """

    kind = "site"
    label = "site"
    open_concurrency = 8
    start_deliveries = 60.0
    users = 10  # sockets are spread over these users; the first senders are distinct users

    def __init__(
        self,
        log_dir: Path,
        database: str = "postgres",
        *,
        redis_url: str = REDIS_URL,
        name: str = "site",
        users: int = users,
    ) -> None:
        super().__init__(log_dir)
        self.redis_url = redis_url
        self.name = name
        self.users = users
        self.sqlite = database == "sqlite"
        self.database = f"chatsite_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        if self.sqlite:
            self.database_url = f"sqlite:///{log_dir / 'site.sqlite3'}"
        else:
            self.database_url = f"{POSTGRES_URL}/{self.database}"
        self.prefix = f"bench-{uuid.uuid4().hex[:10]}"
        self.tokens: list[str] = []
        self.created = False

    def env(self) -> dict[str, str]:
        return server_env(
            {
                "DJANGO_SETTINGS_MODULE": "chatsite.settings",
                "DJANGO_SECRET_KEY": SECRET_KEY,
                "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "CHAT_LAYER_PREFIX": self.prefix,
                # Never refuse a bench message: the limit is measured elsewhere.
                "CHAT_RATE_LIMIT": "1000000/1s",
                # One token per user lasts the whole run.
                "CHAT_TOKEN_TTL": "7200",
            }
        )

    def manage(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603  (our own command line)
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-3000:]}")
        return result.stdout

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        """One statement on the site's database, committed (`%s` parameters on both)."""
        if self.sqlite:
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as connection:
                # The schema's checks call REGEXP, which Django gives its own connections.
                connection.create_function(
                    "REGEXP", 2, lambda pattern, text: bool(re.search(pattern, str(text)))
                )
                connection.execute(statement.replace("%s", "?"), params)
            connection.close()
        else:
            with psycopg.connect(self.database_url, autocommit=True) as pg:
                pg.execute(statement, params)

    def prepare(self) -> None:
        if not self.sqlite:
            with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{self.database}"')
            self.created = True
        self.manage("migrate", "--noinput")
        # One password hash for every user: hashing is slow by design, and the
        # bench measures chat, not sign-ups.
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.auth.hashers import make_password\n"
            f"hashed = make_password({PASSWORD!r})\n"
            "User = get_user_model()\n"
            "User.objects.bulk_create([User(username=f'bench{i:02d}', password=hashed)"
            f" for i in range({self.users})])",
        )

    def start(self, workers: int) -> None:
        args = (ROOT / "deploy" / "daphne.args").read_text().split()
        for number in range(workers):
            command = [
                PYTHON,
                "-m",
                "chat.platform.server",
                *args,
                "-b",
                "127.0.0.1",
                "-p",
                "{port}",
            ]
            server = Server(
                f"{self.name}-{workers}w-{number}",
                [*command, "chatsite.asgi:application"],
                ROOT,
                self.env(),
                self.log_dir,
            )
            server.start("/healthz")
            self.servers.append(server)
        if not self.tokens and self.users > TOKEN_REQUESTS:
            self.tokens = self.tokens_issue()
        elif not self.tokens:
            with ThreadPoolExecutor(self.users) as pool:
                self.tokens = list(pool.map(self.token, range(self.users)))

    def token(self, user: int) -> str:
        server = self.servers[user % len(self.servers)]
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/api/token/",
            data=json.dumps({"username": f"bench{user:02d}", "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return str(json.load(response)["token"])

    def tokens_issue(self) -> list[str]:
        """Every user's token, issued by chat.web.tokens.token_issue in one manage.py shell: the
        token POST /api/token/ answers with, without checking thousands of passwords."""
        issued = self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            "from chat.web.tokens import token_issue\n"
            "users = get_user_model().objects.filter(username__startswith='bench')\n"
            "for user in users.order_by('pk'):\n"
            "    print('token', token_issue(user=user))",
        )
        # The shell says more than the tokens (how many objects it imported, ...).
        tokens = [line.split()[1] for line in issued.splitlines() if line.startswith("token ")]
        if len(tokens) != self.users:
            raise RuntimeError(f"{len(tokens)} tokens issued for {self.users} users")
        return tokens

    def room(self) -> str:
        slug = f"bench-{uuid.uuid4().hex[:12]}"
        self.execute(
            "INSERT INTO chat_room (name, slug, description, kind, archived, created,"
            " last_message_number) VALUES (%s, %s, '', 'public', false, CURRENT_TIMESTAMP, 0)",
            (slug, slug),
        )
        return slug

    def spec(self, room: str) -> dict[str, Any]:
        return {**super().spec(room), "tokens": self.tokens}

    def broadcast_room(self, senders: int) -> dict[str, Any]:
        """A broadcast room open to viewers, whose first `senders` users post as staff;
        the spec of its sockets (the rest watch without signing in)."""
        slug = f"stage-{uuid.uuid4().hex[:12]}"
        self.execute(
            "INSERT INTO chat_room (name, slug, description, kind, archived, public_viewing,"
            " live_comments, state_version, created, last_message_number)"
            " VALUES (%s, %s, '', 'broadcast', false, true, false, 0, CURRENT_TIMESTAMP, 0)",
            (slug, slug),
        )
        self.execute(
            "UPDATE auth_user SET is_staff = true WHERE username < %s",
            (f"bench{senders:02d}",),
        )
        return {**self.spec(slug), "kind": "site-broadcast", "senders": senders}

    def fill_room(self, count: int) -> tuple[str, float]:
        """A room of `count` messages, loaded with COPY; (slug, seconds the load took)."""
        slug = self.room()
        started = time.monotonic()
        with psycopg.connect(self.database_url) as connection:
            room_id, author_id = connection.execute(
                "SELECT r.id, u.id FROM chat_room r, auth_user u"
                " WHERE r.slug = %s AND u.username = 'bench00'",
                (slug,),
            ).fetchone()  # type: ignore[misc]
            first = datetime.now(UTC) - timedelta(seconds=count)
            with connection.cursor() as cursor:
                copy_sql = (
                    "COPY chat_message (room_id, number, author_id, body, created, edited)"
                    " FROM STDIN"
                )
                with cursor.copy(copy_sql) as copy:
                    chunk = io.StringIO()
                    for number in range(1, count + 1):
                        created = (first + timedelta(seconds=number)).isoformat()
                        chunk.write(
                            f"{room_id}\t{number}\t{author_id}\t"
                            f"history message {number}, of a room a million long\t{created}\tf\n"
                        )
                        if number % 50_000 == 0:
                            copy.write(chunk.getvalue())
                            chunk = io.StringIO()
                    copy.write(chunk.getvalue())
            connection.execute(
                "UPDATE chat_room SET last_message_number = %s WHERE id = %s", (count, room_id)
            )
            connection.commit()
            connection.execute("ANALYZE chat_message")
        return slug, time.monotonic() - started

    def get(self, path: str, token: str) -> float:
        """Seconds one authenticated GET of `path` took (it must answer 200)."""
        started = time.perf_counter()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.servers[0].port}{path}",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            response.read()
            assert response.status == 200
        return time.perf_counter() - started

    def cleanup(self, redis_keys: bool = True) -> None:
        """Drop the database and, with `redis_keys`, the run's keys in Redis (not needed
        on a Redis of the run's own, which is stopped anyway)."""
        if self.created:
            with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        for url in self.redis_url.split(",") if redis_keys else []:
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(f"{self.prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            client.close()


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
