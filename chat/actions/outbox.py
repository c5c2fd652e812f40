"""Where a write's events leave for the channel layer: once its transaction commits.

`send_on_commit` is the one way an action emits. From sync code the events
are sent from the committing thread, each bounded by CHAT_LAYER_TIMEOUT. A
socket runs the action with `run` instead: the events are handed back to
the event loop, which sends them (`deliver`) after the socket has answered
its own client, so that an acknowledgement never follows the broadcast.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chat.platform import outages
from chat.platform.db import database_sync_to_async
from chat.platform.layers import LAYER_ERRORS
from chat.platform.redis import pools

logger = logging.getLogger(__name__)

Event = dict[str, Any]
Outbox = list[tuple[str, Event]]
T = TypeVar("T")

# Set while a socket runs an action: its events are collected here, not sent.
_collecting: contextvars.ContextVar[Outbox | None] = contextvars.ContextVar(
    "chat_outbox", default=None
)


def send_on_commit(group: str, event: Event | Callable[[], Event]) -> None:
    """Send `event` to `group` once the current transaction commits (at once outside
    one). A callable is called then, to build the event from the committed state."""

    def send() -> None:
        message = event() if callable(event) else event
        collected = _collecting.get()
        if collected is not None:
            collected.append((group, message))
            return
        layer = get_channel_layer()
        assert layer is not None
        try:
            async_to_sync(pools.bounded)(layer.group_send(group, message))
        except LAYER_ERRORS:
            # The write stands; open pages see it when they resume or reload.
            logger.warning("broadcast to %s failed", group, exc_info=True)

    transaction.on_commit(send)


async def run(action: Callable[..., T], **kwargs: Any) -> tuple[T, Outbox]:
    """Run a sync action on the sockets' database thread; (its result, the events it
    emitted, committed, to be sent with `deliver`)."""
    collected: Outbox = []
    token = _collecting.set(collected)
    try:
        result = await database_sync_to_async(action)(**kwargs)
    finally:
        _collecting.reset(token)
    outages.DATABASE.served()
    return result, collected


async def deliver(layer: Any, outbox: Outbox) -> None:
    """Send an action's committed events from the event loop, in order, each bounded."""
    for group, event in outbox:
        await pools.bounded(layer.group_send(group, event))
    outages.CHANNEL_LAYER.served()
