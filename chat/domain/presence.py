"""Who is online in each room, right across workers.

One Redis sorted set per room holds every open socket as
`<user pk>:<username>:<channel name>`, scored by the time it expires. The
worker holding a socket pushes that time forward every CHAT_HEARTBEAT_SECONDS,
so a worker killed with SIGKILL leaves entries that expire on their own within
three heartbeats (`ttl`). Each shard keeps an index of its rooms with
entries, scored no later than each room's first expiry; on every heartbeat
every worker sweeps the rooms of every shard that are due, its own or not,
and tells each room who `left` (the lobby's counts hear it too). So a
socket of a dead worker stops counting within ttl() + one heartbeat.

A user is online while any of their sockets is; the scripts below decide
`joined` and `left` atomically in Redis, so two workers never disagree. Each
decision takes the next number of the room's presence version: broadcasts
from different workers may arrive out of order, and a socket passes on news
of a user only when it is newer than what it last told of them (and than its
welcome's `online` list).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from chat.domain import events
from chat.platform.groups import room_group_name
from chat.platform.layers import LAYER_ERRORS
from chat.platform.redis import keys, pools, scripts
from chat.platform.redis.routing import room_shard

logger = logging.getLogger(__name__)


def ttl() -> float:
    """Seconds a socket's entry lives unless its worker renews it: three heartbeats."""
    return 3.0 * settings.CHAT_HEARTBEAT_SECONDS


def socket_member(*, user_id: int, username: str, channel_name: str) -> str:
    return f"{user_id}:{username}:{channel_name}"


def _username(entry: bytes | str) -> str:
    """The username of a socket entry, or of a "<pk>:<username>" user key."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    return text.split(":", 2)[1]


def online_from_members(members: list[Any]) -> list[str]:
    """Distinct usernames of live socket entries, sorted."""
    return sorted({_username(member) for member in members})


@dataclass(frozen=True)
class Joined:
    """What a socket's arrival decided, at `version` of its room's presence."""

    came_online: bool
    online: list[str]
    ghosts: list[str]
    version: int


class PresenceNews:
    """What one socket has told its client of who is online, and how recent that was.

    Workers broadcast their decisions in their own time: a socket passes on
    news of a user only if it is newer than its welcome's `online` list (at
    `base`) and than the last news it told of that user.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        self.told: dict[str, int] = {}

    def fresh(
        self, *, version: int, joined: list[str], left: list[str]
    ) -> tuple[list[str], list[str]]:
        """The part of the news decided at `version` that this socket should pass on."""
        fresh: dict[str, list[str]] = {"joined": [], "left": []}
        for change, usernames in (("joined", joined), ("left", left)):
            for username in usernames:
                if version > max(self.base, self.told.get(username, 0)):
                    self.told[username] = version
                    fresh[change].append(username)
        return fresh["joined"], fresh["left"]


async def presence_join(connection: Any, *, room_id: int, user_id: int, member: str) -> Joined:
    """Register a socket's `member` entry."""
    now = time.time()
    came_online, version, online, ghosts = await scripts.PRESENCE_JOIN.run(
        connection,
        3,
        keys.presence(room_id),
        keys.presence_version(room_id),
        keys.presence_rooms(),
        member,
        now,
        now + ttl(),
        f"{user_id}:",
        int(ttl() * 4),
        room_id,
    )
    return Joined(
        came_online=bool(came_online),
        online=sorted(_username(user) for user in online),
        ghosts=[_username(user) for user in ghosts],
        version=int(version),
    )


async def presence_leave(
    connection: Any, *, room_id: int, user_id: int, member: str
) -> tuple[bool, int]:
    """Unregister a socket's `member` entry; (it was the user's last in the room, version)."""
    went_offline, version = await scripts.PRESENCE_LEAVE.run(
        connection,
        2,
        keys.presence(room_id),
        keys.presence_version(room_id),
        member,
        time.time(),
        f"{user_id}:",
    )
    return bool(went_offline), int(version)


async def presence_refresh(layer: Any, sockets: list[tuple[int, str]]) -> None:
    """Push the expiry of these (room id, member) entries forward, on each room's shard."""
    expires = time.time() + ttl()
    by_shard: dict[int, list[tuple[int, str]]] = {}
    for room_id, member in sockets:
        by_shard.setdefault(room_shard(room_id, layer.ring_size), []).append((room_id, member))
    for shard, entries in by_shard.items():
        pipe = layer.connection(shard).pipeline(transaction=False)
        for room_id, member in entries:
            pipe.zadd(keys.presence(room_id), {member: expires}, xx=True)
            pipe.expire(keys.presence(room_id), int(ttl() * 4))
        await pipe.execute()


# Rooms one sweep script looks at, at most; a shard with more due sweeps again.
SWEEP_BATCH = 200


async def presence_sweep_due(connection: Any) -> list[tuple[int, int, list[str]]]:
    """Drop the expired sockets of every room of one shard that is due a sweep:
    (room id, version, usernames that went offline) for each room where someone did."""
    now = time.time()
    swept: list[tuple[int, int, list[str]]] = []
    while True:
        answer = await scripts.PRESENCE_SWEEP_DUE.run(
            connection,
            1,
            keys.presence_rooms(),
            now,
            keys.presence_prefix(),
            keys.presence_version_prefix(),
            SWEEP_BATCH,
        )
        index = 0
        while index < len(answer):
            room_id, version, count = (int(value) for value in answer[index : index + 3])
            users = answer[index + 3 : index + 3 + count]
            swept.append((room_id, version, [_username(user) for user in users]))
            index += 3 + count
        due = await connection.zcount(keys.presence_rooms(), "-inf", now)
        if not due:
            return swept


async def socket_joins(
    layer: Any, *, room: Any, user: Any, channel_name: str
) -> tuple[str, Joined]:
    """Count a socket as online in its room: (its entry's member, what that decided)."""
    member = socket_member(user_id=user.pk, username=user.get_username(), channel_name=channel_name)
    connection = pools.for_room(layer, room.pk)
    joined = await pools.bounded(
        presence_join(connection, room_id=room.pk, user_id=user.pk, member=member)
    )
    return member, joined


async def socket_announce(
    layer: Any, *, room: Any, user: Any, joined: Joined, channel_name: str
) -> None:
    """Tell the room that the user came online (not the socket itself), and of swept ghosts."""
    news = []
    if joined.came_online:
        username = user.get_username()
        news.append(
            events.chat_presence(
                room_id=room.pk, joined=[username], version=joined.version, channel=channel_name
            )
        )
    if joined.ghosts:
        news.append(
            events.chat_presence(room_id=room.pk, left=joined.ghosts, version=joined.version)
        )
    try:
        for event in news:
            await pools.bounded(layer.group_send(room.group_name, event))
    except LAYER_ERRORS:
        logger.warning("presence broadcast failed", exc_info=True)


async def socket_leaves(layer: Any, *, room: Any, user: Any, member: str) -> None:
    """The socket is gone: tell the room if the user went offline with it."""
    try:
        connection = pools.for_room(layer, room.pk)
        went_offline, version = await pools.bounded(
            presence_leave(connection, room_id=room.pk, user_id=user.pk, member=member)
        )
        if went_offline:
            event = events.chat_presence(
                room_id=room.pk, left=[user.get_username()], version=version
            )
            await pools.bounded(layer.group_send(room.group_name, event))
    except LAYER_ERRORS:
        # The entry expires within ttl(); a sweep then says `left`.
        logger.warning("presence leave failed", exc_info=True)


async def presence_heartbeat(layer: Any, consumers: list[Any]) -> None:
    """Keep this worker's sockets alive in Redis; sweep every room whose sockets expired.

    `consumers` carry `presence_entry` (room id, member) once they joined.
    Every room of every shard is swept, not only this worker's: a room whose
    sockets were all on a worker that died has no one else to sweep it, and
    the lobby's counts (every page's /ws/me/) would keep its ghosts.
    """
    entries = [c.presence_entry for c in consumers if c.presence_entry is not None]
    await presence_refresh(layer, entries)
    for shard in range(layer.ring_size):
        for room_id, version, gone in await presence_sweep_due(layer.connection(shard)):
            await layer.group_send(
                room_group_name(room_id),
                events.chat_presence(room_id=room_id, left=gone, version=version),
            )


def online_counts(room_ids: list[int]) -> dict[int, int]:
    """How many users are online in each room (for the lobby and the API).

    Read from each room's shard. With a shard unreachable, its rooms' counts
    are unknown and read as 0: the lobby still loads.
    """
    now = time.time()
    by_shard: dict[int, list[int]] = {}
    for room_id in room_ids:
        by_shard.setdefault(room_shard(room_id, pools.shard_count()), []).append(room_id)
    counts: dict[int, int] = {}
    for shard, rooms in by_shard.items():
        pipe = pools.sync_client(shard).pipeline(transaction=False)
        for room_id in rooms:
            pipe.zrangebyscore(keys.presence(room_id), now, "+inf")
        try:
            results = pipe.execute()
        except (redis.RedisError, OSError):
            logger.warning("presence unavailable on shard %d", shard, exc_info=True)
            continue
        for room_id, members in zip(rooms, results, strict=True):
            counts[room_id] = len(online_from_members(members))
    return counts
