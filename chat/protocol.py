"""The socket protocol's names (docs/protocol-v1.md, The WebSocket; docs/protocol.md).

Close codes are defined here once; the server and the page read them from here
(the page through its template). daphne (autobahn) lets an application close
only with 1000 or 3000-4999: anything else raises inside daphne instead of
closing, so the codes that mirror standard ones are 40xx (4009 for 1009).
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """Why the server closed a socket."""

    # A malformed query parameter (`after`).
    BAD_QUERY = 4400
    # Not authenticated: anonymous, a bad or expired token, a password changed, logged out.
    UNAUTHENTICATED = 4401
    # The user is deactivated.
    FORBIDDEN = 4403
    # No such room, or one this user may not (or no longer) read.
    NOT_FOUND = 4404
    # Ten `rate_limited` answers in a row on one socket.
    FLOODING = 4429
    # A message larger than CHAT_FRAME_MAX_BYTES.
    TOO_BIG = 4009
    # The server failed unexpectedly serving this socket (it logged why):
    # reconnect with backoff and resume with `after=`. (docs/protocol.md)
    INTERNAL_ERROR = 4011
    # The server lost its broadcast channel (Redis restarted): reconnect and resume.
    SERVICE_RESTART = 4012
    # The channel layer or the database cannot serve now: try again later.
    TRY_AGAIN_LATER = 4013


def close_codes() -> dict[str, int]:
    """Every close code by name, for the page."""
    return {code.name: code.value for code in CloseCode}
