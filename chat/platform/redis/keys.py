"""Every key the site keeps in Redis besides channels-redis' own, under CHAT_LAYER_PREFIX.

The shard of each is chat.platform.redis.routing's to say: a room's keys by the room,
a user's by the user, the rest by their own name.
"""

from __future__ import annotations

import hashlib

from django.conf import settings


def _prefix() -> str:
    return str(settings.CHAT_LAYER_PREFIX)


def epoch() -> str:
    """Written on every shard when first missing: a new value means the shard lost its data."""
    return f"{_prefix()}:epoch"


def workers() -> str:
    """The live workers (their layers' client prefixes), scored by their last heartbeat."""
    return f"{_prefix()}:workers"


def reaping(worker: str) -> str:
    """Held by the one worker that takes a dead worker's channels out of every group."""
    return f"{_prefix()}:reaping:{worker}"


def reaped(worker: str) -> str:
    """Left for a worker that was taken for dead: if it lives, its sockets are deaf."""
    return f"{_prefix()}:reaped:{worker}"


def rate(user_id: int, what: str = "messages") -> str:
    """The times of a user's recent `what` (messages, reactions, comments, uploads, ...)."""
    suffix = "" if what == "messages" else f":{what}"
    return f"{_prefix()}:rate:{user_id}{suffix}"


def bot_rate(key_id: int) -> str:
    """The times of a bot key's recent messages (CHAT_PUBLISH_RATE_LIMIT)."""
    return f"{_prefix()}:rate:key:{key_id}"


def throttle(kind: str, value: str) -> str:
    """Recent attempts of `kind` (failed log-ins by name or address, sign-ups by address).

    Hashed: usernames are user text, of any length and alphabet.
    """
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{_prefix()}:throttle:{kind}:{digest}"


def presence_prefix() -> str:
    """What every room's presence key starts with (a script derives a room's key from it)."""
    return f"{_prefix()}:presence:"


def presence(room_id: int) -> str:
    """A room's open sockets, scored by when each expires."""
    return f"{presence_prefix()}{room_id}"


def presence_version_prefix() -> str:
    """What every room's presence version key starts with."""
    return f"{_prefix()}:presence-version:"


def presence_version(room_id: int) -> str:
    """The number of a room's last presence decision. No expiry: it only ever grows."""
    return f"{presence_version_prefix()}{room_id}"


def presence_rooms() -> str:
    """On every shard: the ids of its rooms with presence entries, each scored no later
    than its earliest entry's expiry (when the room may next need a sweep)."""
    return f"{_prefix()}:presence-rooms"


def viewers(group: str) -> str:
    """A broadcast room's viewers: worker -> "<its sockets>:<until when that holds>"."""
    return f"{_prefix()}:viewers:{group}"


def typing(room_id: int, user_id: int) -> str:
    """Set while a user's `typing` in a room was told lately
    (chat.platform.redis.pools.first_in)."""
    return f"{_prefix()}:typing:{room_id}:{user_id}"
