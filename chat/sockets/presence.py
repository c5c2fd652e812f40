"""A room socket's part in who is online: counted in as it opens, told of the others'
comings and goings, counted out at its end (chat/domain/presence.py keeps the counts).

In a broadcast room a socket is one of the viewers, counted by the feeds
(chat/sockets/feeds.py), and never online.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat.domain import events
from chat.domain.presence import Joined, PresenceNews, socket_announce, socket_joins, socket_leaves
from chat.models import Room
from chat.sockets.feeds import feed_hub


class Presence:
    """One room socket's presence, given its layer, room, user, channel and send."""

    def __init__(
        self,
        layer: Any,
        *,
        room: Room,
        user: Any,
        channel_name: str,
        send: Callable[[str], Awaitable[None]],
    ) -> None:
        self.layer = layer
        self.room = room
        self.user = user
        self.channel_name = channel_name
        self.send = send
        # (room id, Redis member) while this socket counts as online.
        self.entry: tuple[int, str] | None = None
        self.news = PresenceNews(0)

    async def join(self) -> Joined:
        """Count this socket in: online in its room, or among a broadcast room's viewers."""
        room = self.room
        if room.kind == Room.Kind.BROADCAST:
            # A viewer count, not who is online: count this socket in at once.
            await feed_hub(self.layer).count_viewers([room.group_name], announce=False)
            return Joined(came_online=False, online=[], ghosts=[], version=0)
        member, joined = await socket_joins(
            self.layer, room=room, user=self.user, channel_name=self.channel_name
        )
        self.entry = (room.pk, member)
        self.news = PresenceNews(joined.version)
        return joined

    async def announce(self, joined: Joined) -> None:
        """Tell the room what this socket's arrival decided (once its welcome is out)."""
        await socket_announce(
            self.layer,
            room=self.room,
            user=self.user,
            joined=joined,
            channel_name=self.channel_name,
        )

    async def leave(self) -> None:
        """Count this socket out; the room hears if its user went offline with it."""
        if self.entry is not None:
            member, self.entry = self.entry[1], None
            await socket_leaves(self.layer, room=self.room, user=self.user, member=member)

    async def arrived(self, event: dict[str, Any]) -> None:
        """Another socket's news (`chat.presence`): passed on if newer than what was told."""
        if event["channel"] == self.channel_name:
            return
        joined, left = self.news.fresh(
            version=event["version"], joined=event["joined"], left=event["left"]
        )
        if joined == event["joined"] and left == event["left"]:
            await self.send(event["text"])
        elif joined or left:
            await self.send(events.presence_text(joined=joined, left=left))
