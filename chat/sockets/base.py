"""What every socket of the site does with the layer: the base of the room, /ws/me/ and
notes sockets.

- Groups: a room's group is joined through the worker's feed (chat/sockets/feeds.py),
  any other directly; every group joined is left at the disconnect.
- The watch (chat/sockets/lifecycle.py): a shard that lost its data, or a
  reader of the worker's queue that failed on one, closes the sockets whose
  groups live there (4012), and their clients resume.
- Refusals during an outage are 4013 (try again later), told once for all sockets.
- A user's sockets close as the account or session ends (chat/sockets/moderation.py).
"""

from __future__ import annotations

import logging
from typing import Any

from chat.platform import outages
from chat.platform.layers import LAYER_ERRORS
from chat.platform.redis import pools
from chat.platform.socket import InboxConsumer
from chat.protocol import CloseCode
from chat.sockets.feeds import feed_hub
from chat.sockets.lifecycle import Lifecycle

# Room groups (chat.models.room_group_name) are joined through the worker's feed.
ROOM_GROUP_PREFIX = "room-"

logger = logging.getLogger(__name__)


class Socket(InboxConsumer):
    groups_joined: list[str]
    lifecycle: Lifecycle
    # Whether this socket watches the room of a broadcast room's group it joins
    # (chat/sockets/feeds.py counts its viewers): a room's own socket does, /ws/me/ does not.
    watches = False

    def started(self) -> None:
        self.groups_joined = []
        self.lifecycle = Lifecycle(self, close=lambda code: self.close(code=code))

    @property
    def opened(self) -> bool:
        """Whether the socket has sent what opening it owes (chat/sockets/lifecycle.py)."""
        return self.lifecycle.opened

    async def refuse(self, code: CloseCode) -> None:
        # Refused after joining the watch: it must not close this socket again.
        self.lifecycle.leave()
        await super().refuse(code)

    async def refuse_unavailable(self, error: BaseException) -> None:
        """Refuse to open while Redis or the database is down (4013, try again later),
        the outage told once for all sockets (chat.platform.outages)."""
        outage = outages.CHANNEL_LAYER if isinstance(error, LAYER_ERRORS) else outages.DATABASE
        outage.refused(error)
        await self.refuse(CloseCode.TRY_AGAIN_LATER)

    # --- groups ---------------------------------------------------------------------------

    async def join(self, *groups: str, batched: bool = False) -> None:
        """Join groups: a room's through the worker's feed (chat/sockets/feeds.py), others
        directly."""
        for group in groups:
            if group.startswith(ROOM_GROUP_PREFIX):
                await feed_hub(self.channel_layer).join(group, self, batched=batched)
            else:
                await pools.bounded(self.channel_layer.group_add(group, self.channel_name))
            self.groups_joined.append(group)

    async def leave_groups(self) -> None:
        """Leave every group joined; a failure leaves the entry to expire."""
        groups, self.groups_joined = self.groups_joined, []
        for group in groups:
            await self.leave(group)

    async def leave(self, group: str) -> None:
        if group in self.groups_joined:
            self.groups_joined.remove(group)
        try:
            if group.startswith(ROOM_GROUP_PREFIX):
                await feed_hub(self.channel_layer).leave(group, self)
            else:
                await pools.bounded(self.channel_layer.group_discard(group, self.channel_name))
        except LAYER_ERRORS:
            # The group entry expires with the layer's group_expiry.
            logger.warning("leaving %s failed", group, exc_info=True)

    def take_batch(self, batch: dict[str, Any]) -> bool:
        """A room feed's tick of messages (chat/sockets/feeds.py), written now if this socket
        can; False to get it as an event in the inbox, as here."""
        return False

    # --- the watcher's (chat/sockets/watcher.py) ------------------------------------------

    @property
    def presence_entry(self) -> tuple[int, str] | None:
        """(room id, Redis member) while this socket counts as online in a room."""
        return None

    def shards(self) -> set[int]:
        """The shards this socket's groups live on (where their messages queue for it):
        the loss of any of them deafens it (chat/sockets/watcher.py)."""
        layer = self.channel_layer
        return {layer.consistent_hash(group) for group in self.groups_joined}

    def watched_rooms(self) -> list[int]:
        """The rooms whose newest message this socket should have (the tail check)."""
        return []

    async def catch_up(self, last_numbers: dict[int, int]) -> None:
        """The tail check: send what the watched rooms have beyond what was sent."""

    async def chat_layer_lost(self, event: dict[str, Any]) -> None:
        """A reader of the worker's queue failed on a shard: the socket closes (4012) if
        messages for it may have been lost there, and its client resumes."""
        if event["shard"] in self.shards():
            await self.layer_restarted()

    async def layer_restarted(self) -> None:
        """The layer may have lost this socket's groups: the client must resume (4012)."""
        await self.lifecycle.layer_restarted()

    # --- events every socket hears --------------------------------------------------------

    async def chat_user_closed(self, event: dict[str, Any]) -> None:
        """The account or this session ended (chat/sockets/moderation.py): close with its code."""
        session_key = event["session_key"]
        if session_key is None or session_key == self.scope.get("auth_session_key"):
            await self.close(code=event["code"])
