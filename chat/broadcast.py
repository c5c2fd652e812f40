"""Broadcasts from sync code (admin, views): sent once the write has committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chat.layers import LAYER_ERRORS
from chat.redis import pools

logger = logging.getLogger(__name__)


Event = dict[str, Any]


def group_send_on_commit(group: str, event: Event | Callable[[], Event]) -> None:
    """Send `event` to `group` after the current transaction commits.

    A callable is called then, to build the event from the committed state. The
    send is bounded by CHAT_LAYER_TIMEOUT: a hung shard never holds a request.
    """

    def send() -> None:
        layer = get_channel_layer()
        assert layer is not None
        try:
            message = event() if callable(event) else event
            async_to_sync(pools.bounded)(layer.group_send(group, message))
        except LAYER_ERRORS:
            # The write stands; open pages see it when they resume or reload.
            logger.warning("broadcast to %s failed", group, exc_info=True)

    transaction.on_commit(send)
