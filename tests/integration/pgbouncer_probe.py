"""What transaction pooling breaks, tried by the site's own settings through a real PgBouncer.

    DATABASE_URL=postgres://...@<pgbouncer>/<db> python -m tests.integration.pgbouncer_probe MODE

Run with DJANGO_SETTINGS_MODULE=chatsite.settings; prints one JSON line,
{"ok": true, ...} or {"ok": false, "error": "..."}. Each mode starts
something on one server connection and finishes it on another: PgBouncer hands
a transaction the server connection freed last (server_round_robin = 0), so
while a second client holds that one in an open transaction, the next
statement of the first is served by another.

- cursor:   QuerySet.iterator() reads its second row from its server-side cursor;
- prepared: a query psycopg has prepared is run again;
- timezone: the TimeZone Django set on its connection is read back.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import django


def on_another_server_connection(step: Callable[[], Any]) -> Any:
    """step(), while another client holds the server connection this one used last."""
    from django.db import connection, transaction

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    try:
        return step()
    finally:
        release.set()
        holder.join()


def backend() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def probe(mode: str) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    users = get_user_model().objects.order_by("pk")
    if mode == "cursor":
        rows = users.iterator(chunk_size=1)
        first = next(rows)
        before = backend()
        rest = on_another_server_connection(lambda: (backend(), list(rows)))
        return {"rows": 1 + len(rest[1]), "first": first.username, "moved": before != rest[0]}
    if mode == "prepared":
        for _ in range(3):
            list(users.filter(username="user00"))
        before = backend()
        after, rows = on_another_server_connection(
            lambda: (backend(), list(users.filter(username="user00")))
        )
        return {"rows": len(rows), "moved": before != after}
    if mode == "timezone":
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('TimeZone')")
            here = cursor.fetchone()[0]
        before = backend()

        def read() -> tuple[int, str]:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), current_setting('TimeZone')")
                pid, zone = cursor.fetchone()
                return int(pid), str(zone)

        after, there = on_another_server_connection(read)
        return {"zones": [here, there], "moved": before != after}
    raise SystemExit(f"unknown mode {mode}")


def main() -> None:
    django.setup()
    try:
        result = {"ok": True, **probe(sys.argv[1])}
    except Exception as error:  # what the database said, for the test to read
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
