"""HAProxy and PgBouncer from the shipped configs, on free loopback ports.

Each is Debian's (deploy/ensure-services.sh haproxy pgbouncer), started with
deploy/haproxy/haproxy.cfg or deploy/pgbouncer/pgbouncer.ini as shipped, with
only where it listens, what it forwards to and how clients log in changed.
Any test module may put HAProxy in front of any group of workers, and
PgBouncer in front of the test database (the fixtures are registered by
tests/integration/conftest.py):

    def test_...(cluster_factory, haproxy_factory, pgbouncer, database_url):
        env = {"DATABASE_URL": pgbouncer.through(database_url), "DATABASE_PGBOUNCER": "1"}
        a, b = cluster_factory(2, server_args=("--proxy-headers",), **env).workers
        proxy = haproxy_factory({"a0": a, "b0": b})      # or a list, named by worker.name
        ...                                             # proxy.url
        proxy.wait_until("a0", "DOWN")                  # after `a` is killed

Both are context managers too: `with HAProxy({"a0": "127.0.0.1:8001"}) as proxy:`.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import quote, unquote, urlsplit

import psycopg
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
PGBOUNCER_CONFIG = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
PGBOUNCER_START = ROOT / "deploy" / "pgbouncer" / "start.sh"
SERVERS_BLOCK = re.compile(r"( *)# servers: begin\n.*?# servers: end\n", re.DOTALL)
# "Server workers/a0 is DOWN, reason: Layer7 wrong status, code: 503, ..."
SERVER_STATE = re.compile(r"Server workers/(\S+) is (UP|DOWN)(.*)")


def program(name: str) -> str:
    """A Debian program, in /usr/sbin even when that is not on PATH."""
    found = shutil.which(name) or f"/usr/sbin/{name}"
    assert Path(found).exists(), f"{name} is installed by deploy/ensure-services.sh {name}"
    return found


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _Process:
    """A server process logging to a file of its own, stopped on exit."""

    name = "server"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"chatsite-{self.name}-"))
        self.port = free_port()
        self.log_path = self.dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self, command: list[str], **options: Any) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, **options
            )
        deadline = time.monotonic() + 10
        while not listening(self.port):
            assert self.process.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, f"{self.name} did not listen: {self.log()}"
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self) -> None:
        raise NotImplementedError


class HAProxy(_Process):
    """deploy/haproxy/haproxy.cfg in front of `servers` ({name: "host:port"}).

    Each server is health-checked as shipped (GET /healthz, inter 1s fall 2
    rise 2). Its log (the shipped log-format, and the servers' changes of state)
    is `log()`.
    """

    name = "haproxy"

    def __init__(self, servers: Mapping[str, str], *, health_check_host: str = "localhost"):
        super().__init__()
        self.servers = dict(servers)
        self.health_check_host = health_check_host

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        """The shipped config, listening here and forwarding to `servers`."""
        shipped = HAPROXY_CONFIG.read_text()
        assert shipped.count("\n    bind :80\n") == 1 and SERVERS_BLOCK.search(shipped)
        lines = "".join(
            f"    server {name} {address} check\n" for name, address in self.servers.items()
        )
        config = shipped.replace("\n    bind :80\n", f"\n    bind 127.0.0.1:{self.port}\n")
        return SERVERS_BLOCK.sub(lambda _: lines, config)

    def start(self) -> None:
        path = self.dir / "haproxy.cfg"
        path.write_text(self.config())
        env = {**os.environ, "HEALTH_CHECK_HOST": self.health_check_host}
        command = [program("haproxy"), "-db", "-f", str(path)]
        # The shipped maxconn takes two descriptors a connection (docker-compose.scale.yml
        # gives it 65536); where fewer may be opened, the connections are capped instead.
        [maxconn] = re.findall(r"^    maxconn (\d+)$", path.read_text(), re.MULTILINE)
        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if descriptors < 2 * int(maxconn) + 100:
            command += ["-n", str((descriptors - 100) // 2)]
        self.spawn(command, env=env)

    def states(self) -> list[tuple[str, str, str]]:
        """Every change of a server's state HAProxy logged: (server, UP or DOWN, why)."""
        return [match.groups() for match in SERVER_STATE.finditer(self.log())]

    def state(self, server: str) -> str:
        """UP or DOWN: servers start UP, and change as their checks pass or fail."""
        changes = [state for name, state, _ in self.states() if name == server]
        return changes[-1] if changes else "UP"

    def wait_until(self, server: str, state: str, timeout: float = 15) -> float:
        """Seconds until `server` is `state`; fails after `timeout`."""
        started = time.monotonic()
        while self.state(server) != state:
            assert time.monotonic() - started < timeout, (
                f"{server} is not {state} after {timeout} s: {self.log()[-3000:]}"
            )
            time.sleep(0.05)
        return time.monotonic() - started


class PgBouncer(_Process):
    """deploy/pgbouncer/pgbouncer.ini in front of the PostgreSQL on 127.0.0.1:5432.

    By default clients are trusted (any password), and PgBouncer logs in to
    PostgreSQL as `user` with `password`; every database name is PostgreSQL's of
    that name. With `shipped_auth`, deploy/pgbouncer/start.sh writes the
    auth_file from PGBOUNCER_USER and PGBOUNCER_PASSWORD, and clients must give
    that password (SCRAM), as in docker-compose.scale.yml. `user` may read
    PgBouncer's statistics (`show`).
    """

    name = "pgbouncer"

    def __init__(
        self,
        *,
        user: str = "postgres",
        password: str = "postgres",  # the test PostgreSQL's
        upstream: str = "127.0.0.1:5432",
        shipped_auth: bool = False,
    ) -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.upstream = upstream
        self.shipped_auth = shipped_auth

    def url(self, database: str, *, password: str | None = None) -> str:
        secret = quote(self.password if password is None else password, safe="")
        return f"postgres://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    def through(self, database_url: str) -> str:
        """`database_url` (a database of the PostgreSQL behind), reached through here."""
        parts = urlsplit(database_url)
        return self.url(parts.path.lstrip("/"), password=unquote(parts.password or ""))

    def config(self) -> str:
        """The shipped config: here, before the test PostgreSQL, with this auth."""
        shipped = PGBOUNCER_CONFIG.read_text()
        host, port = self.upstream.rsplit(":", 1)
        changes = {
            r"^chat = host=db port=5432 dbname=chat$": f"* = host={host} port={port}",
            r"^listen_addr = .*$": "listen_addr = 127.0.0.1",
            r"^listen_port = 6432$": f"listen_port = {self.port}",
            r"^auth_file = .*$": f"auth_file = {self.dir / 'userlist.txt'}",
        }
        if not self.shipped_auth:
            changes[r"^auth_type = scram-sha-256$"] = "auth_type = trust"
        config = shipped
        for pattern, replacement in changes.items():
            config, count = re.subn(pattern, replacement, config, flags=re.MULTILINE)
            assert count == 1, f"{pattern} is not in {PGBOUNCER_CONFIG}"
        # For `show`: SHOW POOLS, SHOW STATS on the admin console.
        return config.replace("[pgbouncer]\n", f"[pgbouncer]\nstats_users = {self.user}\n")

    def start(self) -> None:
        config = self.dir / "pgbouncer.ini"
        config.write_text(self.config())
        # PgBouncer refuses to run as root: under root, it runs as Debian's postgres.
        options: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            options["user"] = "postgres"
        if self.shipped_auth:
            env = {
                **os.environ,
                "PGBOUNCER_USER": self.user,
                "PGBOUNCER_PASSWORD": self.password,
                "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin",
            }
            self.spawn([str(PGBOUNCER_START), str(config)], env=env, **options)
        else:
            (self.dir / "userlist.txt").write_text(f'"{self.user}" "{self.password}"\n')
            self.spawn([program("pgbouncer"), str(config)], **options)

    def show(self, what: str) -> list[dict[str, Any]]:
        """Rows of PgBouncer's SHOW <what> (POOLS, STATS, CLIENTS, SERVERS, ...)."""
        assert re.fullmatch(r"[A-Z_]+", what)
        # The admin console speaks the simple query protocol only.
        with psycopg.connect(
            self.url("pgbouncer"), autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as connection:
            cursor = connection.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class _Listening(Protocol):
    name: str
    port: int


@pytest.fixture
def haproxy_factory() -> Iterator[Any]:
    """HAProxy in front of any group of workers (anything with `name` and `port`, on
    127.0.0.1): {server name: worker}, or a list named by the workers' names.
    Every one started is stopped at the end of the test."""
    started: list[HAProxy] = []

    def make(workers: list[_Listening] | dict[str, _Listening]) -> HAProxy:
        named = workers if isinstance(workers, dict) else {w.name: w for w in workers}
        proxy = HAProxy({name: f"127.0.0.1:{w.port}" for name, w in named.items()})
        started.append(proxy)
        proxy.start()
        return proxy

    yield make
    for proxy in started:
        proxy.__exit__(None, None, None)


@pytest.fixture
def pgbouncer() -> Iterator[PgBouncer]:
    """A PgBouncer of this test alone, in front of the test PostgreSQL (trusting its
    clients): `pgbouncer.through(database_url)` is the test database through it."""
    with PgBouncer() as bouncer:
        yield bouncer
