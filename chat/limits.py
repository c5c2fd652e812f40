"""The message rate limit, shared by every socket of a user on every worker.

A Redis sorted set per user holds the times of their recently stored messages
(CHAT_RATE_LIMIT: `<count>/<seconds>s`). A send first reserves a place; a send
that turns out not to store a new message (a resend, a refusal, a failure)
gives its place back, so only newly stored messages count.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from django.conf import settings

from chat.errors import ChatError

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


def rate_key(user_id: int) -> str:
    return f"{settings.CHAT_LAYER_PREFIX}:rate:{user_id}"


async def rate_reserve(connection: Any, *, user_id: int) -> str:
    """Reserve a place for one new message; its token, or ChatError(rate_limited)."""
    count, seconds = settings.CHAT_RATE_LIMIT
    member = uuid.uuid4().hex
    wait = float(
        await connection.eval(RESERVE, 1, rate_key(user_id), time.time(), seconds, count, member)
    )
    if wait > 0:
        # Rounded up: a client that waits exactly retry_after is let through.
        retry_after = math.ceil(wait * 100) / 100
        raise ChatError(
            "rate_limited",
            f"at most {count} messages per {seconds} s",
            retry_after=retry_after,
        )
    return member


async def rate_release(connection: Any, *, user_id: int, member: str) -> None:
    """Give back a place that did not store a new message."""
    await connection.zrem(rate_key(user_id), member)
