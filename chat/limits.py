"""Limits shared by every worker through Redis: messages, log-ins, sign-ups.

Messages: a Redis sorted set per user holds the times of their recently
stored messages (CHAT_RATE_LIMIT: `<count>/<seconds>s`). A send first reserves
a place; a send that turns out not to store a new message (a resend, a
refusal, a failure) gives its place back, so only newly stored messages count.

Log-ins and sign-ups (the views, sync): sorted sets of recent failed log-ins
per username and per client address (CHAT_LOGIN_LIMIT), and of sign-up
attempts per address (CHAT_SIGNUP_LIMIT). Over the limit, the views answer 429
with how long to wait, before checking any password.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest

from chat.errors import ChatError

logger = logging.getLogger(__name__)
# Failed log-ins allowed per client address, as a multiple of those per username:
# many people may share one address (an office, a campus).
ADDRESS_FACTOR = 10

# KEYS[1] the user's set; ARGV: now, window, limit, member.
# Returns 0 and adds the member, or the seconds until the oldest entry leaves.
RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(oldest[2] + ARGV[2] - ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
return '0'
"""


def rate_limit(what: str) -> tuple[int, int]:
    """(count, seconds) for `what`: newly stored messages, reactions, live comments."""
    limits: dict[str, tuple[int, int]] = {
        "messages": settings.CHAT_RATE_LIMIT,
        "reactions": settings.CHAT_REACTION_RATE_LIMIT,
        "comments": settings.CHAT_COMMENT_RATE_LIMIT,
        "uploads": settings.CHAT_UPLOAD_RATE_LIMIT,
    }
    return limits[what]


def rate_key(user_id: int, what: str = "messages") -> str:
    suffix = "" if what == "messages" else f":{what}"
    return f"{settings.CHAT_LAYER_PREFIX}:rate:{user_id}{suffix}"


def bot_key_rate_key(key: Any) -> str:
    """The set of a bot key's recent messages (CHAT_PUBLISH_RATE_LIMIT)."""
    return f"{settings.CHAT_LAYER_PREFIX}:rate:key:{key.pk}"


async def rate_reserve(connection: Any, *, user_id: int, what: str = "messages") -> str:
    """Reserve a place for one new `what`; its token, or ChatError(rate_limited)."""
    count, seconds = rate_limit(what)
    member = uuid.uuid4().hex
    key = rate_key(user_id, what)
    wait = float(await connection.eval(RESERVE, 1, key, time.time(), seconds, count, member))
    if wait > 0:
        # Rounded up: a client that waits exactly retry_after is let through.
        retry_after = math.ceil(wait * 100) / 100
        raise ChatError(
            "rate_limited",
            f"at most {count} {what} per {seconds} s",
            retry_after=retry_after,
        )
    return member


async def rate_release(
    connection: Any, *, user_id: int, member: str, what: str = "messages"
) -> None:
    """Give back a place that did not store anything new."""
    await connection.zrem(rate_key(user_id, what), member)


class Place:
    """A place reserved for one new message or reaction; kept once it is stored."""

    kept = False


@contextlib.asynccontextmanager
async def rate_place(
    connection: Any, *, user_id: int, what: str = "messages"
) -> AsyncIterator[Place]:
    """Reserve a place (or ChatError(rate_limited)); given back unless kept.

    A send that turns out not to store a new message (a resend, a refusal, a
    failure) does not count against the limit; nor does a reaction that
    changes nothing.
    """
    timeout = settings.CHAT_LAYER_TIMEOUT
    member = await asyncio.wait_for(rate_reserve(connection, user_id=user_id, what=what), timeout)
    place = Place()
    try:
        yield place
    finally:
        if not place.kept:
            await asyncio.wait_for(
                rate_release(connection, user_id=user_id, member=member, what=what), timeout
            )


# --- log-ins and sign-ups --------------------------------------------------

# KEYS: sets; ARGV: now, window, then one limit per key. The seconds until
# every set is under its limit again (0: under all of them).
WAIT = """
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1] - ARGV[2])
  local count = redis.call('ZCARD', key)
  local limit = tonumber(ARGV[i + 2])
  if count >= limit then
    local edge = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, edge[2] + ARGV[2] - ARGV[1])
  end
end
return tostring(wait)
"""


@functools.cache
def redis_client() -> redis.Redis:
    """A blocking client of the layer's Redis, for views (one pool per process)."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=settings.CHAT_LAYER_TIMEOUT,
        socket_connect_timeout=settings.CHAT_LAYER_TIMEOUT,
    )


def _key(kind: str, value: str) -> str:
    # Hashed: usernames are user text, of any length and alphabet.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{settings.CHAT_LAYER_PREFIX}:throttle:{kind}:{digest}"


def _address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def login_keys(request: HttpRequest, username: str) -> list[tuple[str, int]]:
    """The failure sets a log-in as `username` counts against, with their limits."""
    count, _ = settings.CHAT_LOGIN_LIMIT
    return [
        (_key("login-user", username.strip().casefold()), count),
        (_key("login-address", _address(request)), count * ADDRESS_FACTOR),
    ]


def signup_keys(request: HttpRequest) -> list[tuple[str, int]]:
    count, _ = settings.CHAT_SIGNUP_LIMIT
    return [(_key("signup-address", _address(request)), count)]


def throttle_wait(keys: list[tuple[str, int]], *, seconds: int) -> float:
    """Seconds until every set is under its limit again; 0 when it is now.

    A Redis that cannot answer lets the attempt through (logged): the password
    check still stands, and the site stays usable while Redis restarts.
    """
    try:
        wait = float(
            redis_client().eval(
                WAIT,
                len(keys),
                *[key for key, _ in keys],
                time.time(),
                seconds,
                *[limit for _, limit in keys],
            )
        )
    except redis.RedisError:
        logger.warning("throttle unavailable: letting an attempt through", exc_info=True)
        return 0.0
    return math.ceil(wait) if wait > 0 else 0.0


def throttle_count(keys: list[tuple[str, int]], *, seconds: int) -> None:
    """Count one attempt (a failed log-in, a sign-up) in every set."""
    now = time.time()
    try:
        pipe = redis_client().pipeline()
        for key, _ in keys:
            pipe.zadd(key, {uuid.uuid4().hex: now})
            pipe.expire(key, seconds)
        pipe.execute()
    except redis.RedisError:
        logger.warning("throttle unavailable: an attempt went uncounted", exc_info=True)


@contextlib.contextmanager
def rate_place_blocking(*, key: str, limit: tuple[int, int], what: str) -> Iterator[Place]:
    """rate_place for sync code (the HTTP API): a place under `key`, given back unless kept.

    Over the limit: ChatError(rate_limited) with retry_after. Redis unreachable:
    ChatError(unavailable): a publish is refused rather than let through unlimited.
    """
    count, seconds = limit
    member = uuid.uuid4().hex
    client = redis_client()
    try:
        wait = float(client.eval(RESERVE, 1, key, time.time(), seconds, count, member))
    except redis.RedisError:
        logger.warning("rate limit unavailable", exc_info=True)
        raise ChatError("unavailable", "try again shortly") from None
    if wait > 0:
        retry_after = math.ceil(wait * 100) / 100
        raise ChatError(
            "rate_limited", f"at most {count} {what} per {seconds} s", retry_after=retry_after
        )
    place = Place()
    try:
        yield place
    finally:
        if not place.kept:
            try:
                client.zrem(key, member)
            except redis.RedisError:
                logger.warning("a rate limit place was not given back", exc_info=True)


def wait_detail(wait: float) -> str:
    """'Try again in ...', in words."""
    minutes = math.ceil(wait / 60)
    if wait <= 60:
        return f"Too many attempts. Try again in {math.ceil(wait)} seconds."
    return f"Too many attempts. Try again in {minutes} minutes."
