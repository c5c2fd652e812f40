"""The base of the site's sockets: one inbox, one event at a time, and closes that say why.

- Client events and channel-layer messages are read from one inbox
  (chat/platform/layers.py). Channels races a receive task for each against the other
  for every event (asyncio.wait, and a new task each time): for a socket that
  mostly passes broadcasts on, that was a third of the work. Here a task
  forwards the client's events into the inbox, and the consumer awaits that
  alone; dispatch is the same, one event at a time.
- Close codes are `CloseCode`s, passed to daphne as plain ints: autobahn
  refuses any other type. A refusal accepts first, so that the client can
  read the code.
- Each socket names the channel-layer events it has no use for (`ignores`):
  they are dropped. Any other event without a handler is a fault.
- An unexpected exception in a handler closes the socket with 4011 (reconnect
  and resume) and is logged once; it never reaches daphne, which would log a
  crash and could not close with the standard 1011.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from chat.platform.layers import Inbox, Local
from chat.platform.wire import SharedText, Wire
from chat.protocol import CloseCode

logger = logging.getLogger(__name__)


class InboxConsumer(AsyncWebsocketConsumer):
    inbox: Inbox
    # The daphne connection under `send`, for frames shared by many sockets.
    wire: Wire | None
    # Set once the handshake is accepted.
    accepted = False
    # Set once the socket is closing (by the server, or a send found the client
    # gone): nothing more is acted on but the disconnect, which cleans up.
    closing = False
    # The channel-layer events this socket has no use for: dropped unread. Any other
    # event without a handler is a fault, and closes the socket (4011).
    ignores: frozenset[str] = frozenset()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        self.wire = Wire.of(send)
        inbox = self.inbox = self.channel_layer.inbox(self.channel_name)
        self.started()

        async def forward() -> None:
            while True:
                inbox.put_client(await receive())

        forwarding = asyncio.ensure_future(forward())
        try:
            while True:
                await self.dispatch(await inbox.get_any())
        except StopConsumer:
            pass
        finally:
            forwarding.cancel()
            self.stopped()
            self.channel_layer.discard_inbox(self.channel_name)

    def started(self) -> None:
        """Called once the inbox exists, before the first event."""

    def stopped(self) -> None:
        """Called once the consumer has handled its last event."""

    async def dispatch(self, message: dict[str, Any] | Local) -> None:
        # After the server's close, neither a client frame (a deactivated
        # user's, say) nor a broadcast nor a timer is acted on; only the disconnect is.
        kind = "local" if isinstance(message, Local) else message["type"]
        if self.closing and kind != "websocket.disconnect":
            return
        if kind in self.ignores:
            return
        # Channels' dispatch runs aclose_old_connections() (a thread hop) before
        # every event. Every database call here goes through
        # database_sync_to_async, which closes stale connections itself, and
        # broadcast handlers never touch the database: the hop is pure cost.
        try:
            if isinstance(message, Local):
                await message.run()  # the socket's own timer (Inbox.later)
            else:
                await getattr(self, get_handler_name(message))(message)
        except StopConsumer:
            raise
        except Exception:
            if kind == "websocket.disconnect":
                logger.exception("websocket.disconnect failed; the socket's clean-up stopped")
                await aclose_old_connections()  # as Channels' own disconnect ends
                raise StopConsumer() from None
            # Raised out of here, it would end the consumer without its
            # disconnect: its group memberships would outlive it.
            code = CloseCode.INTERNAL_ERROR
            logger.exception("%s failed; closing the socket with %d", kind, code)
            await self.refuse(code)

    async def send_text(self, text: str) -> None:
        """Write one text frame; a client already closing is left to its disconnect.

        A `SharedText`, the same for many sockets, is sent as framed once (chat/platform/wire.py).
        """
        if self.wire is not None and type(text) is SharedText and self.wire.send_shared(text):
            return
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except Disconnected:
            # The client's close is under way and daphne refuses sends; its
            # websocket.disconnect follows, and with it the clean-up.
            self.closing = True

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol=subprotocol, headers=headers)
        self.accepted = True

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        already = self.closing
        self.closing = True
        if isinstance(code, CloseCode):
            code = int(code)  # daphne (autobahn) refuses any type but int itself
        try:
            await super().close(code=code, reason=reason)
        except Disconnected:
            if not already:
                logger.debug("close of a socket the client had closed")

    async def refuse(self, code: CloseCode) -> None:
        """Close with `code`, accepting first if need be, so that the client can read why."""
        if not self.accepted:
            await self.accept()
        await self.close(code=code)
