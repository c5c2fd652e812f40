"""The sockets' way to the database: Channels' thread hop, checking a connection once a second.

Every database call of a socket runs on the worker's database thread
(`database_sync_to_async`), which calls Django's `close_old_connections`
around it. That marks the connection unchecked, so with CONN_HEALTH_CHECKS
each call began with a `SELECT 1`: a round trip for every message stored,
as costly as the insert. Here a connection that answered within the last
CHECK_INTERVAL is taken as checked; one idle for longer, or one that raised,
is checked as before. A server that went away within that second fails the
call (the socket answers `unavailable`, and the client sends again), and the
connection is replaced on the next one.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from asgiref.sync import SyncToAsync
from channels.db import DatabaseSyncToAsync
from django.db import close_old_connections, connections
from django.db.backends.base.base import BaseDatabaseWrapper

# A connection that answered this recently is not checked again (seconds).
CHECK_INTERVAL = 1.0
# When each open connection of the database thread last answered without an error.
_answered: weakref.WeakKeyDictionary[BaseDatabaseWrapper, float] = weakref.WeakKeyDictionary()
# When another connection of the worker last failed (chat.actions.plain, on the event loop):
# the database may have gone away under this thread's connection too.
_failed_elsewhere = 0.0


def failed_elsewhere() -> None:
    """Another connection of the worker met a database error: the database thread checks
    its own connection before its next call, however recently it answered."""
    global _failed_elsewhere
    _failed_elsewhere = time.monotonic()


class CheckedOncePerInterval(DatabaseSyncToAsync):
    """`database_sync_to_async`, with the health check skipped for a connection
    that answered within CHECK_INTERVAL."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        now = time.monotonic()
        for connection in connections.all(initialized_only=True):
            answered = _answered.get(connection)
            if (
                answered is not None
                and now - answered < CHECK_INTERVAL
                and answered > _failed_elsewhere
                and connection.connection is not None
                and not connection.errors_occurred
            ):
                connection.health_check_done = True  # type: ignore[attr-defined]
        try:
            return SyncToAsync.thread_handler(self, loop, *args, **kwargs)
        finally:
            now = time.monotonic()
            for connection in connections.all(initialized_only=True):
                if connection.connection is not None and not connection.errors_occurred:
                    _answered[connection] = now
                else:
                    _answered.pop(connection, None)
            close_old_connections()


database_sync_to_async = CheckedOncePerInterval
