"""The site's application with one planted fault, for the tests of close code 4011.

The first `typing` frame a worker receives raises an unexpected exception inside
the consumer, as a bug would; every later one is served as usual.

    python -m chat.platform.server ... tests.integration.faulty_asgi:application
"""

from __future__ import annotations

from typing import Any

# Django is set up by the site's entry, before anything imports models.
from chatsite.asgi import application

# isort: split
from chat import protocol
from chat.sockets import room as room_socket

__all__ = ["application"]

served = room_socket.RoomConsumer.handlers[protocol.Typing]
fault_planted = True


async def typing_with_a_fault(consumer: room_socket.RoomConsumer, command: Any) -> None:
    global fault_planted
    if fault_planted:
        fault_planted = False
        raise RuntimeError("a fault planted by the test")
    await served(consumer, command)


room_socket.RoomConsumer.handlers[protocol.Typing] = typing_with_a_fault
