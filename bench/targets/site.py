"""The site under test, started as deploy/ starts it: its database, its users and their tokens."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis

from targets.base import POSTGRES_URL, REDIS_URL, ROOT, SECRET_KEY, Target
from targets.servers import Server, server_env

PYTHON = sys.executable
PASSWORD = "bench-Pass-2026"  # noqa: S105  (bench users of a throw-away database)
# Up to this many users, a site's tokens come from POST /api/token/, one password check
# each (PBKDF2, most of a second of CPU); past it, from chat.web.tokens in one shell.
TOKEN_REQUESTS = 20


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
