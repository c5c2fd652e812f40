"""Who is online in each room, right across workers.

One Redis sorted set per room holds every open socket as
`<user pk>:<username>:<channel name>`, scored by the time it expires. The
worker holding a socket pushes that time forward every HEARTBEAT seconds, so
a worker killed with SIGKILL leaves entries that expire on their own within
TTL; the surviving workers sweep them and tell the room who `left`.

A user is online while any of their sockets is; the scripts below decide
`joined` and `left` atomically in Redis, so two workers never disagree. Each
decision takes the next number of the room's presence version: broadcasts
from different workers may arrive out of order, and a socket passes on news
of a user only when it is newer than what it last told of them (and than its
welcome's `online` list).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from chat import events
from chat.layers import LAYER_ERRORS
from chat.models import room_group_name

logger = logging.getLogger(__name__)

TTL = 30.0
HEARTBEAT = 10.0

# KEYS[1] room set, KEYS[2] its version; ARGV: member, now, expires at, user
# prefix ("<pk>:"), key ttl. Returns {1 if the user came online else 0, version,
# {"<pk>:<username>" online, the user included}, {expired users now gone}}.
JOIN = """
local version = redis.call('INCR', KEYS[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local prefix = ARGV[4]
local was_online = 0
local live_users = {}
for _, member in ipairs(live) do
  local user = string.match(member, '^([^:]*:[^:]*):')
  live_users[user] = true
  if string.sub(member, 1, #prefix) == prefix then was_online = 1 end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
live_users[string.match(ARGV[1], '^([^:]*:[^:]*):')] = true
local online = {}
for user, _ in pairs(live_users) do table.insert(online, user) end
local ghosts = {}
local seen = {}
for _, member in ipairs(gone) do
  local user = string.match(member, '^([^:]*:[^:]*):')
  local mine = string.sub(member, 1, #prefix) == prefix
  if user and not live_users[user] and not seen[user] and not mine then
    seen[user] = true
    table.insert(ghosts, user)
  end
end
return {1 - was_online, version, online, ghosts}
"""

# KEYS[1] room set, KEYS[2] its version; ARGV: member, now, user prefix.
# Returns {1 if the user went offline else 0, version}.
LEAVE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 0 then return {0, 0} end
local version = redis.call('INCR', KEYS[2])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
for _, member in ipairs(live) do
  if string.sub(member, 1, #ARGV[3]) == ARGV[3] then return {0, version} end
end
return {1, version}
"""

# KEYS[1] room set, KEYS[2] its version; ARGV: now. Removes expired sockets;
# returns {version, the users now gone...}.
SWEEP = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone == 0 then return {0} end
local version = redis.call('INCR', KEYS[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local live_users = {}
for _, member in ipairs(live) do
  live_users[string.match(member, '^([^:]*:[^:]*):')] = true
end
local result = {version}
for _, member in ipairs(gone) do
  local user = string.match(member, '^([^:]*:[^:]*):')
  if user and not live_users[user] then
    live_users[user] = true
    table.insert(result, user)
  end
end
return result
"""


def room_key(room_id: int) -> str:
    return f"{settings.CHAT_LAYER_PREFIX}:presence:{room_id}"


def version_key(room_id: int) -> str:
    # No expiry: a room's versions must only ever grow while anyone is connected.
    return f"{settings.CHAT_LAYER_PREFIX}:presence-version:{room_id}"


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
    came_online, version, online, ghosts = await connection.eval(
        JOIN,
        2,
        room_key(room_id),
        version_key(room_id),
        member,
        now,
        now + TTL,
        f"{user_id}:",
        int(TTL * 4),
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
    went_offline, version = await connection.eval(
        LEAVE,
        2,
        room_key(room_id),
        version_key(room_id),
        member,
        time.time(),
        f"{user_id}:",
    )
    return bool(went_offline), int(version)


async def presence_refresh(connection: Any, sockets: list[tuple[int, str]]) -> None:
    """Push the expiry of these (room id, member) entries forward."""
    if not sockets:
        return
    expires = time.time() + TTL
    pipe = connection.pipeline(transaction=False)
    for room_id, member in sockets:
        pipe.zadd(room_key(room_id), {member: expires}, xx=True)
        pipe.expire(room_key(room_id), int(TTL * 4))
    await pipe.execute()


async def presence_sweep(connection: Any, room_id: int) -> tuple[list[str], int]:
    """Drop the expired sockets of a room; (usernames that went offline with them, version)."""
    version, *gone = await connection.eval(
        SWEEP, 2, room_key(room_id), version_key(room_id), time.time()
    )
    return [_username(user) for user in gone], int(version)


async def socket_joins(
    layer: Any, *, room: Any, user: Any, channel_name: str
) -> tuple[str, Joined]:
    """Count a socket as online in its room: (its entry's member, what that decided)."""
    member = socket_member(user_id=user.pk, username=user.get_username(), channel_name=channel_name)
    joined = await asyncio.wait_for(
        presence_join(layer.connection(0), room_id=room.pk, user_id=user.pk, member=member),
        settings.CHAT_LAYER_TIMEOUT,
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
            await asyncio.wait_for(
                layer.group_send(room.group_name, event), settings.CHAT_LAYER_TIMEOUT
            )
    except LAYER_ERRORS:
        logger.warning("presence broadcast failed", exc_info=True)


async def socket_leaves(layer: Any, *, room: Any, user: Any, member: str) -> None:
    """The socket is gone: tell the room if the user went offline with it."""
    try:
        went_offline, version = await asyncio.wait_for(
            presence_leave(layer.connection(0), room_id=room.pk, user_id=user.pk, member=member),
            settings.CHAT_LAYER_TIMEOUT,
        )
        if went_offline:
            event = events.chat_presence(
                room_id=room.pk, left=[user.get_username()], version=version
            )
            await asyncio.wait_for(
                layer.group_send(room.group_name, event), settings.CHAT_LAYER_TIMEOUT
            )
    except LAYER_ERRORS:
        # The entry expires within TTL; a sweep then says `left`.
        logger.warning("presence leave failed", exc_info=True)


async def presence_heartbeat(layer: Any, consumers: list[Any]) -> None:
    """Keep this worker's sockets alive in Redis; tell rooms whose ghosts expired.

    `consumers` carry `presence_entry` (room id, member) once they joined.
    """
    entries = [c.presence_entry for c in consumers if c.presence_entry is not None]
    connection = layer.connection(0)
    await presence_refresh(connection, entries)
    for room_id in sorted({room_id for room_id, _ in entries}):
        gone, version = await presence_sweep(connection, room_id)
        if gone:
            await layer.group_send(
                room_group_name(room_id),
                events.chat_presence(room_id=room_id, left=gone, version=version),
            )


_sync_client: redis.Redis | None = None


def online_counts(room_ids: list[int]) -> dict[int, int]:
    """How many users are online in each room (for the lobby and the API).

    With Redis unreachable the counts are unknown and read as 0: the lobby
    still loads.
    """
    global _sync_client
    if not room_ids:
        return {}
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=settings.CHAT_LAYER_TIMEOUT
        )
    now = time.time()
    pipe = _sync_client.pipeline(transaction=False)
    for room_id in room_ids:
        pipe.zrangebyscore(room_key(room_id), now, "+inf")
    try:
        results = pipe.execute()
    except (redis.RedisError, OSError):
        logger.warning("presence unavailable", exc_info=True)
        return {}
    return {
        room_id: len(online_from_members(members))
        for room_id, members in zip(room_ids, results, strict=True)
    }
