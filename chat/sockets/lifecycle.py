"""A socket's hold on its worker's epoch watch (chat/sockets/watcher.py), from handshake to end.

The same for every socket (room, /ws/me/, notes):

- it joins the watch before any group: a Redis restart after the watch's
  look closes it; one before is already the Redis its groups are added to;
- a refusal or the disconnect lets go of the watch, so that it is never
  closed twice;
- a restart the watch reports closes an open socket with 4012 (the client
  resumes). While the socket is still opening, a close would refuse the
  handshake or cut the welcome short: the restart is noted, and the socket
  refuses (before its accept) or closes (once it has opened) itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat.protocol import CloseCode
from chat.sockets import watcher


class Lifecycle:
    """One socket's place in the watch; `socket` is what the watch calls (watcher.Watched)."""

    def __init__(self, socket: watcher.Watched, *, close: Callable[[CloseCode], Awaitable[None]]):
        self.socket = socket
        self.close = close
        self.watch: watcher.EpochWatch | None = None
        # Set once the socket has sent what opening it owes (welcome, replay, snapshot).
        self.opened = False

    async def join(self, layer: Any) -> None:
        """Join the worker's watch: call it before the socket joins any group."""
        self.watch = await watcher.epoch_watch_join(layer, self.socket)

    @property
    def restarted(self) -> bool:
        """Whether the layer restarted since the join (or the socket never joined)."""
        return self.watch is None

    async def open(self) -> None:
        """The socket has opened: from now on a restart closes it at once; one while it was
        opening closes it now."""
        self.opened = True
        if self.watch is None:
            await self.close(CloseCode.SERVICE_RESTART)

    def leave(self) -> None:
        """Out of the watch (refused, or disconnected): it closes this socket no more."""
        if self.watch is not None:
            self.watch.consumers.discard(self.socket)
            self.watch = None

    async def layer_restarted(self) -> None:
        """The watch saw the layer lose this socket's groups: the client must resume (4012)."""
        if self.watch is not None:
            self.leave()
            # Called from the watch's own task, also while the socket is opening.
            if self.opened:
                await self.close(CloseCode.SERVICE_RESTART)
