"""Workers whose database is reached through a real PgBouncer in transaction mode.

deploy/pgbouncer/pgbouncer.ini as shipped (pool_mode = transaction), in front of
the test PostgreSQL. With DATABASE_PGBOUNCER=1 the site serves everything that
touches the database: sign-up and log-in, messages from many sockets at once,
history, resume and full-text search. The probes show, one at a time, what the
setting turns off and why: each thing that outlives a transaction on the server
breaks as soon as the next transaction is served by another server connection.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

from tests.integration.conftest import PYTHON, ROOT, Cluster, base_env
from tests.integration.proxies import PgBouncer
from tests.integration.test_nginx import signup_through
from tests.integration.test_security_live import cookies_of

pytestmark = pytest.mark.integration

SIGNUP_PASSWORD = "a much longer passphrase 42"  # signup_through's


def log_in_through_the_form(port: int, username: str, password: str) -> str:
    """The session cookie of a log-in through the form, as a browser does it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/accounts/login/")
        response = connection.getresponse()
        page = response.read().decode()
        csrf = cookies_of(response)["csrftoken"]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
        connection.request(
            "POST",
            "/accounts/login/",
            body=urlencode(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf}",
            },
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 302, response.status
        return f"sessionid={cookies_of(response)['sessionid']}"
    finally:
        connection.close()


def get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def token_for(url: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        url + "/api/token/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["token"])


def pooled(pgbouncer: PgBouncer, database: str) -> dict[str, Any]:
    [pool] = [row for row in pgbouncer.show("POOLS") if row["database"] == database]
    [stats] = [row for row in pgbouncer.show("STATS") if row["database"] == database]
    return {**pool, **stats}


@pytest.mark.parametrize("flag", ["1", ""], ids=["DATABASE_PGBOUNCER=1", "unset"])
async def test_the_site_through_pgbouncer_in_transaction_mode(
    flag, pgbouncer: PgBouncer, database_url, cluster_factory, room
):
    """Unset, this passes too: Django 5.2 never prepares statements by default
    (prepare_threshold None, parameters bound on the client) and none of these
    paths reads through a server-side cursor. The probes below show what does break."""
    cluster: Cluster = cluster_factory(
        2, DATABASE_URL=pgbouncer.through(database_url), DATABASE_PGBOUNCER=flag
    )
    first, second = cluster.workers
    database = database_url.rsplit("/", 1)[1]

    # Sign-up (a form post) on one worker, log-in on the other, by form and by token.
    newcomer = f"pgb{uuid.uuid4().hex[:8]}"
    assert await asyncio.to_thread(signup_through, first.url, newcomer, {}) == 302
    session = log_in_through_the_form(second.port, newcomer, SIGNUP_PASSWORD)
    status, page = get(second.url + "/", {"Cookie": session})
    assert status == 200 and newcomer in page

    # Eight sockets on the two workers send at once: one order, no holes.
    names = [f"user{i:02d}" for i in range(7)]
    clients = [await cluster.connect(name, worker=i % 2, room=room) for i, name in enumerate(names)]
    per_sender = 6

    async def burst(client: Any, index: int) -> None:
        for n in range(per_sender):
            body = f"quokka {index}-{n}" if n % 2 == 0 else f"plain {index}-{n}"
            await client.send({"type": "message.send", "body": body, "client_id": f"{index}-{n}"})

    await asyncio.gather(*(burst(client, index) for index, client in enumerate(clients)))
    total = per_sender * len(clients)
    for client in clients:
        ids = [(await client.receive_type("message"))["id"] for _ in range(total)]
        assert ids == list(range(1, total + 1))

    # Resume (a socket's replay) and history (the API), read back from the database.
    token = await asyncio.to_thread(token_for, first.url, newcomer, SIGNUP_PASSWORD)
    late = await cluster.connect("user08", worker=1, room=room, after=total - 5)
    assert [(await late.receive_type("message"))["id"] for _ in range(5)] == list(
        range(total - 4, total + 1)
    )
    bearer = {"Authorization": f"Bearer {token}"}
    status, body = get(first.url + f"/api/rooms/{room}/messages/?limit=100", bearer)
    assert status == 200, body
    assert [message["id"] for message in json.loads(body)["messages"]] == list(range(1, total + 1))

    # Full-text search (PostgreSQL's, with its set_config in a transaction), by API and page.
    status, body = get(second.url + "/api/search/?q=quokka", bearer)
    assert status == 200, body
    found = json.loads(body)["results"]
    assert found and all("quokka" in result["body"] for result in found)
    status, page = get(first.url + "/search/?q=quokka", {"Cookie": session})
    assert status == 200 and "quokka" in page

    for client in [*clients, late]:
        await client.close()
    # It all went through PgBouncer, many clients over fewer server connections.
    pool = pooled(pgbouncer, database)
    assert pool["pool_mode"] == "transaction"
    assert pool["total_xact_count"] >= total
    # Every HTTP request logs in anew (and closes at its end); few server connections serve all.
    logins = pgbouncer.log().count(f"login attempt: db={database} ")
    opened = pgbouncer.log().count("new connection to server")
    assert opened < logins / 2, (opened, logins)
    for worker in cluster.workers:
        assert "Traceback" not in worker.log(), worker.log()[-3000:]


def probe(mode: str, database_url: str, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        [PYTHON, "-m", "tests.integration.pgbouncer_probe", mode],
        cwd=ROOT,
        env=base_env(database_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_server_side_cursors_break_without_the_setting(pgbouncer, database_url, users):
    """QuerySet.iterator() (the admin's select lists read through it) declares a cursor
    WITH HOLD and fetches from it in later transactions."""
    through = pgbouncer.through(database_url)
    broken = probe("cursor", through)
    assert not broken["ok"] and "InvalidCursorName" in broken["error"], broken
    assert "does not exist" in broken["error"]
    fixed = probe("cursor", through, DATABASE_PGBOUNCER="1")
    assert fixed == {"ok": True, "rows": fixed["rows"], "first": "user00", "moved": True}
    assert fixed["rows"] >= len(users)


def test_prepared_statements_break_without_the_setting(pgbouncer, database_url, users):
    """psycopg prepares a query after prepare_threshold runs; Django turns that off by
    default, but a DATABASE_URL may turn it on. PgBouncer 1.18 passes PREPARE and
    EXECUTE to whichever server connection the transaction got."""
    through = pgbouncer.through(database_url) + "?prepare_threshold=1&server_side_binding=true"
    broken = probe("prepared", through)
    assert not broken["ok"] and 'prepared statement "_pg3_' in broken["error"], broken
    fixed = probe("prepared", through, DATABASE_PGBOUNCER="1")
    assert fixed == {"ok": True, "rows": 1, "moved": True}
    # Straight to PostgreSQL, the same URL prepares and runs fine.
    direct = probe("prepared", database_url + "?prepare_threshold=1&server_side_binding=true")
    assert direct["ok"], direct


def test_the_time_zone_django_sets_follows_the_client_to_every_server_connection(
    pgbouncer, database_url, users
):
    """Django sets its connection's TimeZone (UTC) when the server's differs: a SET
    outside any transaction, which PgBouncer replays on each server connection."""
    with psycopg.connect(database_url) as connection:
        [default] = connection.execute("SHOW TimeZone").fetchone() or [None]
    if default == "UTC":
        pytest.skip("the server's TimeZone is UTC already: Django sets nothing")
    result = probe("timezone", pgbouncer.through(database_url), DATABASE_PGBOUNCER="1")
    assert result == {"ok": True, "zones": ["UTC", "UTC"], "moved": True}, (default, result)


def test_the_shipped_auth_takes_the_password_from_the_environment(database_url):
    """deploy/pgbouncer/start.sh writes the one login (SCRAM), as compose starts it."""
    database = database_url.rsplit("/", 1)[1]
    with PgBouncer(shipped_auth=True, password='s3cret "quoted" pass') as bouncer:
        with psycopg.connect(bouncer.url(database)) as connection:
            assert connection.execute("SELECT current_user").fetchone() == ("postgres",)
        with pytest.raises(psycopg.OperationalError, match="authentication failed"):
            psycopg.connect(bouncer.url(database, password="wrong")).close()
        userlist = bouncer.dir / "userlist.txt"
        assert userlist.stat().st_mode & 0o077 == 0  # for PgBouncer's user alone
