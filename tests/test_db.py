"""The sockets' database thread checks a kept connection once a second, not before every call."""

from __future__ import annotations

import pytest
from django.db import connection, connections

from chat.models import Room
from chat.platform import db
from chat.platform.db import database_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept_connections(monkeypatch):
    """Connections as the site keeps them (conn_max_age, health checks), for new ones."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 600)
    monkeypatch.setitem(connections.settings["default"], "CONN_HEALTH_CHECKS", True)
    checks: list[str] = []
    wrapper = type(connections["default"])
    real = wrapper.is_usable

    def is_usable(self) -> bool:
        checks.append(self.alias)
        return real(self)

    monkeypatch.setattr(wrapper, "is_usable", is_usable)
    return checks


def close() -> None:
    connection.close()


def rooms() -> int:
    return Room.objects.count()


async def test_a_connection_that_just_answered_is_not_checked_again(kept_connections, monkeypatch):
    await database_sync_to_async(close)()
    await database_sync_to_async(rooms)()  # a new connection needs no check
    await database_sync_to_async(rooms)()
    await database_sync_to_async(rooms)()
    assert kept_connections == []
    # Idle for longer than the interval: checked before its next use, once.
    monkeypatch.setattr(db, "CHECK_INTERVAL", 0.0)
    await database_sync_to_async(rooms)()
    assert kept_connections == ["default"]
    # The test database is dropped at the end of the run: let go of the thread's connection.
    await database_sync_to_async(close)()


async def test_a_connection_that_raised_is_checked_before_its_next_use(kept_connections):
    def fails() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    await database_sync_to_async(close)()
    await database_sync_to_async(rooms)()
    with pytest.raises(Exception, match="no_such_table"):
        await database_sync_to_async(fails)()
    # Django checks a connection that raised as the call ends, and this one is not
    # taken as fresh: it is checked again before its next use.
    calls = len(kept_connections)
    assert calls >= 1
    assert await database_sync_to_async(rooms)() >= 0
    assert len(kept_connections) == calls + 1
    await database_sync_to_async(close)()
