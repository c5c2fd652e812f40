"""Broadcasts from sync code (admin, views): sent once the write has committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chat.layers import LAYER_ERRORS

logger = logging.getLogger(__name__)


Event = dict[str, Any]


def group_send_on_commit(group: str, event: Event | Callable[[], Event]) -> None:
    """Send `event` to `group` after the current transaction commits.

    A callable is called then, to build the event from the committed state.
    """

    def send() -> None:
        layer = get_channel_layer()
        assert layer is not None
        try:
            async_to_sync(layer.group_send)(group, event() if callable(event) else event)
        except LAYER_ERRORS:
            # The write stands; open pages see it when they resume or reload.
            logger.warning("broadcast to %s failed", group, exc_info=True)

    transaction.on_commit(send)
