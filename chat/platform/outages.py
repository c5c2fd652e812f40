"""An outage the site answers by design is told once, not once per answer.

While the database or Redis cannot serve, every frame that needs it is
answered `unavailable` and every new socket 4013: that is the protocol
working, not a fault of the code. A worker logs one WARNING when such an
outage starts (with the first error) and one when it ends, with how long it
lasted and how many answers it cost. Tracebacks stay for what nobody expected.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


class Outage:
    """One dependency's outages, as one worker sees them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.since: float | None = None
        self.refusals = 0

    def refused(self, error: BaseException) -> None:
        """A frame or a socket was refused because the dependency failed."""
        if self.since is None:
            self.since = time.monotonic()
            self.refusals = 0
            logger.warning(
                "%s unavailable, answering unavailable until it is back: %r", self.name, error
            )
        self.refusals += 1

    def served(self) -> None:
        """A call to the dependency succeeded: an outage under way is over."""
        if self.since is None:
            return
        lasted, self.since = time.monotonic() - self.since, None
        logger.warning(
            "%s back after %.1f s: %d answers were unavailable meanwhile",
            self.name,
            lasted,
            self.refusals,
        )


DATABASE = Outage("database")
CHANNEL_LAYER = Outage("channel layer")


class HealthzUnavailable(logging.Filter):
    """Drops django.request's ERROR record of a 503 from /healthz: the health check saying
    a dependency is down is the check working (a load balancer asks every few
    seconds), and the outage is told once by the sockets that meet it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return not (
            getattr(record, "status_code", None) == 503
            and getattr(request, "path", None) == "/healthz"
        )
