"""A room's missing messages, read once per process however many sockets miss them."""

from __future__ import annotations

import asyncio

from chat.domain.snapshots import messages_between
from chat.models import Message
from chat.platform.db import database_sync_to_async

_missing: dict[tuple[int, int, int], asyncio.Future[list[Message]]] = {}


async def messages_missing(*, room_id: int, after: int, before: int) -> list[Message]:
    """messages_between, read once for every socket of this process missing the same ones.

    A message the layer dropped for a process is missing on all its sockets
    in the room at once: one query serves them all.
    """
    key = (room_id, after, before)
    future = _missing.get(key)
    if future is None:
        future = asyncio.ensure_future(
            database_sync_to_async(messages_between)(room_id=room_id, after=after, before=before)
        )
        _missing[key] = future
        future.add_done_callback(lambda _: _missing.pop(key, None))
    return await asyncio.shield(future)
