"""One object per event loop and channel layer: a worker's hubs (room feeds, notes copies).

asyncio objects (locks, tasks, timers) belong to the loop they were made on, and a
hub holds the channels of the layer it was made for: each test runs its own loop,
and a settings change replaces the layer. `PerLoop.get` gives the running loop's
object for `layer`, making a new one when there is none or the layer was replaced.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class OfLayer(Protocol):
    layer: Any


T = TypeVar("T", bound=OfLayer)


class PerLoop(Generic[T]):
    def __init__(self, make: Callable[[Any], T]) -> None:
        self.make = make
        self.made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, layer: Any) -> T:
        """The running loop's object for `layer` (a new one if the layer was replaced)."""
        loop = asyncio.get_running_loop()
        made = self.made.get(loop)
        if made is None or made.layer is not layer:
            made = self.made[loop] = self.make(layer)
        return made
