"""A channel layer in this process's memory, for the fast tests: the sockets' inbox
without Redis.

Channels' InMemoryChannelLayer keeps groups and a queue per channel; the
sockets read their messages from an `Inbox` instead (chat/platform/socket.py),
as they do on the Redis layer (chat/platform/layers.py). Here a channel made by
`new_channel` gets its inbox at once, and a send or group send for it goes
straight into it: past `capacity` the inbox drops its oldest message with a
WARNING, and the socket fills the hole from the database. A message for a
channel whose consumer has stopped is dropped, as on Redis.

It has no shards (`ring_size` 0): nothing here can restart and lose groups,
and there are no other workers, so the epoch watcher has nothing to look at
(chat/sockets/watcher.py). What keeps its state in Redis of its own accord
(presence, rate limits, viewer counts) is not served by this layer.
"""

from __future__ import annotations

import asyncio
import logging
from copy import deepcopy
from typing import Any

from channels.layers import InMemoryChannelLayer

from chat.platform.layers import Inbox, Local

logger = logging.getLogger(__name__)


class MemoryChannelLayer(InMemoryChannelLayer):
    """InMemoryChannelLayer whose channels of this process are read through an `Inbox`."""

    # No Redis shards: nothing to watch, nothing to lose.
    ring_size = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inboxes: dict[str, Inbox] = {}
        self.overflowed = 0  # messages dropped from full inboxes since start

    def inbox(self, channel: str) -> Inbox:
        """The inbox of a channel of this process (made by new_channel)."""
        inbox = self.inboxes.get(channel)
        if inbox is None:
            inbox = self.inboxes[channel] = Inbox()
        return inbox

    def discard_inbox(self, channel: str) -> None:
        """The channel's consumer has stopped: what arrives for it from now on is dropped."""
        self.inboxes.pop(channel, None)

    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = str(await super().new_channel(prefix))
        # Messages may arrive before the consumer's first receive.
        self.inbox(channel)
        return channel

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if "!" not in channel:
            return await super().send(channel, message)
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        inbox = self.inboxes.get(channel)
        if inbox is None:
            return None  # its consumer has stopped
        # A copy, as a message through Redis is: the sender's dict is its own.
        if inbox.offer(deepcopy(message), self.get_capacity(channel)):
            self.overflowed += 1
            logger.warning(
                "inbox of %s over capacity: dropped its oldest message (%d in all)",
                channel,
                self.overflowed,
            )
        return None

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message of a channel; a cancelled receive of a process channel ends it."""
        if "!" not in channel:
            return await super().receive(channel)
        self.require_valid_channel_name(channel)
        try:
            message = await self.inbox(channel).get()
        except asyncio.CancelledError:
            self.discard_inbox(channel)
            raise
        # Local calls go only to the inboxes this process reads itself (sockets, feeds).
        assert not isinstance(message, Local)
        return message

    async def flush(self) -> None:
        await super().flush()
        self.inboxes = {}
