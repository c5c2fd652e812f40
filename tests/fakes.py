"""Fakes for the pure tests of message order (test_sequence, test_delivery, test_feed_order)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeTimer:
    """A timer asked for: its delay, and whether it was cancelled or fired."""

    delay: float
    cancelled: bool = False
    fired: bool = False

    def cancel(self) -> None:
        self.cancelled = True
