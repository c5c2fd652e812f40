"""The notes' rate limit per person: backpressure, not refusal (CHAT_NOTES_RATE_LIMIT).

A token bucket per person on each worker: `count` updates at once, refilled
at count/seconds a second. An update past it is not refused: it reserves its
place and the socket waits that long before acting on it (and on whatever
the client sent after it), so nothing is lost and a fast typist is slowed to
the rate. Kept in the worker, with no Redis round trip per keystroke: a
person with sockets on several workers has the rate on each.
"""

from __future__ import annotations

import time


class Pace:
    """One person's bucket; the clock is passed in (tests) or read."""

    def __init__(self, count: int, seconds: int) -> None:
        self.capacity = float(count)
        self.rate = count / seconds
        self.tokens = float(count)
        self.at = time.monotonic()

    def take(self, now: float | None = None) -> float:
        """Reserve one update; the seconds to wait before acting on it (0: at once)."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
