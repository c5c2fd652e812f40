"""Real daphne processes on free ports, a fresh PostgreSQL database, real Redis.

Each test gets its own channel-layer prefix, so clusters never hear each other.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import websockets

from tests.integration.make_run import MakeRun
from tests.integration.proxies import haproxy_factory, pgbouncer  # noqa: F401  (fixtures)
from tests.servers import PrivateRedis, free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
# The site's server (daphne with a scrubbed access log), as deploy/ runs it.
SERVER = [PYTHON, "-m", "chat.platform.server"]
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "integration-Pass-2026"

pytestmark = pytest.mark.integration


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CHAT_", "DATABASE_", "PYTEST"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DJANGO_SECRET_KEY": "integration-secret-" + "k" * 40,
            "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            # The database counts a user's messages of the window, and the run's
            # users are shared by every test: the tests of the limit set their own.
            "CHAT_RATE_LIMIT": "10000/10s",
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def static_collect(env: dict[str, str]) -> None:
    """collectstatic, once for the test processes that run at once (make test runs this
    tier in two): under a lock, and only when a static file is newer than the manifest.
    A second collectstatic would rewrite staticfiles.json under the other's workers."""
    manifest = ROOT / "staticfiles" / "staticfiles.json"
    (ROOT / "var").mkdir(exist_ok=True)
    with open(ROOT / "var" / "collectstatic.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        newest = max(path.stat().st_mtime for path in (ROOT / "static").rglob("*"))
        if not manifest.exists() or manifest.stat().st_mtime < newest:
            manage(env, "collectstatic", "--noinput", "-v", "0")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run, dropped afterwards."""
    name = f"chatsite_it_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_URL}/{name}"
    env = base_env(url)
    manage(env, "migrate", "--noinput")
    static_collect(env)
    yield url
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def users(database_url: str) -> list[str]:
    """Twenty users (user00 .. user19), made once per run."""
    names = [f"user{i:02d}" for i in range(20)]
    manage(
        base_env(database_url),
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        f"for name in {names!r}:\n"
        f"    get_user_model().objects.create_user(name, password={PASSWORD!r})",
    )
    return names


class Worker:
    """One daphne process serving the site on its own port."""

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        name: str,
        application: str = "chatsite.asgi:application",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.env = env
        self.application = application
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_args(self) -> list[str]:
        """The daphne options, as deploy/ runs the workers (and any of this worker's own,
        such as --proxy-headers behind nginx, as docker-compose.yml gives them)."""
        return (ROOT / "deploy" / "daphne.args").read_text().split() + self.extra_args

    def start(self) -> None:
        command = [*SERVER, *self.server_args(), "-b", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, self.application],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                # As a host the worker serves (the first of its ALLOWED_HOSTS).
                host = self.env.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1").split(",")[0]
                probe = urllib.request.Request(self.url + "/healthz", headers={"Host": host})
                with urllib.request.urlopen(probe, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    def token(self, username: str, worker: int = 0) -> str:
        request = urllib.request.Request(
            self.workers[worker].url + "/api/token/",
            data=json.dumps({"username": username, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["token"])

    async def connect(
        self, username: str, worker: int, room: str = "general", after: int | None = None
    ) -> Client:
        token = await asyncio.to_thread(self.token, username, worker)
        query = f"?token={token}" + (f"&after={after}" if after is not None else "")
        url = self.workers[worker].url.replace("http", "ws", 1) + f"/ws/rooms/{room}/{query}"
        client = Client(username, await websockets.connect(url, max_size=2**22))
        client.welcome = await client.receive_type("welcome")
        return client


class Client:
    """A WebSocket client speaking JSON frames."""

    def __init__(self, username: str, connection: Any) -> None:
        self.username = username
        self.connection = connection
        self.welcome: dict[str, Any] = {}

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        assert isinstance(frame, dict)
        return frame

    async def receive_type(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame of type `kind`, skipping presence and typing frames."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind:
                return frame
            assert frame["type"] in {"presence", "typing"}, frame

    async def close(self) -> None:
        await self.connection.close()


@pytest.fixture
def cluster_factory(database_url: str, users: list[str], tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def make(
        count: int = 2,
        application: str = "chatsite.asgi:application",
        server_args: tuple[str, ...] = (),
        **env: str,
    ) -> Cluster:
        prefix = f"it-{uuid.uuid4().hex[:10]}"
        workers = []
        for index in range(count):
            worker = Worker(
                base_env(database_url, CHAT_LAYER_PREFIX=prefix, **env),
                tmp_path,
                f"worker{index}",
                application,
                server_args,
            )
            worker.start()
            started.append(worker)
            workers.append(worker)
        return Cluster(workers)

    yield make
    for worker in started:
        worker.kill(signal.SIGTERM)


@pytest.fixture
def cluster(cluster_factory: Any) -> Cluster:
    """Two daphne workers sharing one Redis layer and one database."""
    return cluster_factory(2)


@pytest.fixture
def room(database_url: str) -> str:
    """A fresh public room of this test's own; its slug."""
    slug = f"it-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO chat_room (name, slug, description, kind, archived, created,"
            " last_message_number) VALUES (%s, %s, '', 'public', false, now(), 0)",
            (slug, slug),
        )
    return slug


@pytest.fixture
def stage(database_url: str) -> str:
    """A broadcast room open to viewers, taking live comments; its slug."""
    slug = f"live-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO chat_room (name, slug, description, kind, archived, public_viewing,"
            " live_comments, state_version, created, last_message_number)"
            " VALUES (%s, %s, '', 'broadcast', false, true, true, 0, now(), 0)",
            (slug, slug),
        )
    return slug


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server on a free port for workers started with REDIS_URL=private_redis.url.

    Request it before `cluster_factory`, so that it outlives the workers.
    """
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    """`make run` with nothing set (SQLite, a private Redis, 2 workers), from a clean copy."""
    run = MakeRun(tmp_path_factory.mktemp("make-run"))
    try:
        run.start()
        yield run
    finally:
        run.stop()
