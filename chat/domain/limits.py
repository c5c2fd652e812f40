"""Limits shared by every worker through Redis: messages, log-ins, sign-ups, and the rest.

Per user (reactions, comments, uploads, searches, new conversations, look-ups
of people): a sorted set per user and kind holds the times of their recent
ones, on the user's shard (CHAT_REACTION_RATE_LIMIT and its kin:
`<count>/<seconds>s`). An action first reserves a place; one that turns out
not to change anything (a refusal, a failure) gives its place back, so only
real ones count. A bot
key's messages have a set of their own (CHAT_PUBLISH_RATE_LIMIT). A person's
messages are not counted here: the database counts the stored ones, in the
transaction that stores one (chat.domain.writes.rate_check, chat.actions.plain).

Log-ins and sign-ups (the views, sync): sets of recent failed log-ins per
username and per client address (CHAT_LOGIN_LIMIT), and of sign-up attempts
per address (CHAT_SIGNUP_LIMIT), each on the shard of its own key. Over the
limit, the views answer 429 with how long to wait, before checking any password.
"""

from __future__ import annotations

import contextlib
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
from chat.platform.redis import keys, pools, scripts

logger = logging.getLogger(__name__)
# Failed log-ins allowed per client address, as a multiple of those per username:
# many people may share one address (an office, a campus).
ADDRESS_FACTOR = 10


def rate_limit(what: str) -> tuple[int, int]:
    """(count, seconds) for `what`, a kind of thing a user does often."""
    limits: dict[str, tuple[int, int]] = {
        "reactions": settings.CHAT_REACTION_RATE_LIMIT,
        "comments": settings.CHAT_COMMENT_RATE_LIMIT,
        "uploads": settings.CHAT_UPLOAD_RATE_LIMIT,
        "searches": settings.CHAT_SEARCH_RATE_LIMIT,
        "directs": settings.CHAT_DIRECT_RATE_LIMIT,
        "people": settings.CHAT_PEOPLE_RATE_LIMIT,
    }
    return limits[what]


# What a refusal calls a kind, where its name is not the word.
NOUNS = {"directs": "new conversations", "people": "look-ups of people"}


def _refusal(wait: float, count: int, seconds: int, what: str) -> ChatError:
    # Rounded up: a client that waits exactly retry_after is let through.
    retry_after = math.ceil(wait * 100) / 100
    noun = NOUNS.get(what, what)
    return ChatError(
        "rate_limited", f"at most {count} {noun} per {seconds} s", retry_after=retry_after
    )


class Place:
    """A place reserved for one new message or reaction; kept once it is stored."""

    kept = False


@contextlib.asynccontextmanager
async def rate_place(layer: Any, *, user_id: int, what: str) -> AsyncIterator[Place]:
    """Reserve a place for one new `what` of the user (or ChatError(rate_limited));
    given back unless kept: a reaction that changes nothing does not count."""
    count, seconds = rate_limit(what)
    connection = pools.for_user(layer, user_id)
    key, member = keys.rate(user_id, what), uuid.uuid4().hex
    wait = float(
        await pools.bounded(
            scripts.RESERVE.run(connection, 1, key, time.time(), seconds, count, member)
        )
    )
    if wait > 0:
        raise _refusal(wait, count, seconds, what)
    place = Place()
    try:
        yield place
    finally:
        if not place.kept:
            await pools.bounded(connection.zrem(key, member))


@contextlib.contextmanager
def rate_place_blocking(
    *, what: str, user_id: int | None = None, bot_key_id: int | None = None
) -> Iterator[Place]:
    """rate_place for sync code (the HTTP API), for a user or a bot key's publishes.

    Over the limit: ChatError(rate_limited) with retry_after. Redis unreachable:
    ChatError(unavailable): refused rather than let through unlimited.
    """
    if bot_key_id is not None:
        key, (count, seconds) = keys.bot_rate(bot_key_id), settings.CHAT_PUBLISH_RATE_LIMIT
        client = pools.sync_for(key)
    else:
        assert user_id is not None
        key, (count, seconds) = keys.rate(user_id, what), rate_limit(what)
        client = pools.sync_for_user(user_id)
    member = uuid.uuid4().hex
    try:
        wait = float(scripts.RESERVE.run_sync(client, 1, key, time.time(), seconds, count, member))
    except (redis.RedisError, OSError):
        logger.warning("rate limit unavailable", exc_info=True)
        raise ChatError("unavailable", "try again shortly") from None
    if wait > 0:
        raise _refusal(wait, count, seconds, what)
    place = Place()
    try:
        yield place
    finally:
        if not place.kept:
            try:
                client.zrem(key, member)
            except (redis.RedisError, OSError):
                logger.warning("a rate limit place was not given back", exc_info=True)


# --- log-ins and sign-ups --------------------------------------------------


def _address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def login_keys(request: HttpRequest, username: str) -> list[tuple[str, int]]:
    """The failure sets a log-in as `username` counts against, with their limits."""
    count, _ = settings.CHAT_LOGIN_LIMIT
    return [
        (keys.throttle("login-user", username.strip().casefold()), count),
        (keys.throttle("login-address", _address(request)), count * ADDRESS_FACTOR),
    ]


def signup_keys(request: HttpRequest) -> list[tuple[str, int]]:
    count, _ = settings.CHAT_SIGNUP_LIMIT
    return [(keys.throttle("signup-address", _address(request)), count)]


def throttle_wait(sets: list[tuple[str, int]], *, seconds: int) -> float:
    """Seconds until every set is under its limit again; 0 when it is now.

    Each set is asked on its own shard. A Redis that cannot answer lets the
    attempt through (logged): the password check still stands, and the site
    stays usable while Redis restarts.
    """
    wait = 0.0
    try:
        for key, limit in sets:
            answer = scripts.WAIT.run_sync(pools.sync_for(key), 1, key, time.time(), seconds, limit)
            wait = max(wait, float(answer))
    except (redis.RedisError, OSError):
        logger.warning("throttle unavailable: letting an attempt through", exc_info=True)
        return 0.0
    return math.ceil(wait) if wait > 0 else 0.0


def throttle_count(sets: list[tuple[str, int]], *, seconds: int) -> None:
    """Count one attempt (a failed log-in, a sign-up) in every set."""
    now = time.time()
    try:
        for key, _ in sets:
            pipe = pools.sync_for(key).pipeline()
            pipe.zadd(key, {uuid.uuid4().hex: now})
            pipe.expire(key, seconds)
            pipe.execute()
    except (redis.RedisError, OSError):
        logger.warning("throttle unavailable: an attempt went uncounted", exc_info=True)


def wait_detail(wait: float) -> str:
    """'Try again in ...', in words."""
    minutes = math.ceil(wait / 60)
    if wait <= 60:
        return f"Too many attempts. Try again in {math.ceil(wait)} seconds."
    return f"Too many attempts. Try again in {minutes} minutes."
