"""chat/platform/socket.py's dispatch: events a socket declares it ignores are dropped; any
other event without a handler closes the socket with 4011. Driven with the ASGI send faked."""

from __future__ import annotations

from typing import Any

import pytest
from channels.consumer import get_handler_name

from chat.notes.consumer import NotesConsumer
from chat.platform.socket import InboxConsumer
from chat.protocol import CloseCode
from chat.sockets.me import MeConsumer


class Quiet(InboxConsumer):
    ignores = frozenset({"chat.typing"})

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.wire = None
        self.handled: list[str] = []

    async def base_send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def chat_message(self, event: dict[str, Any]) -> None:
        self.handled.append(event["type"])


async def test_an_ignored_event_needs_no_handler():
    socket = Quiet()
    await socket.dispatch({"type": "chat.typing", "user_id": 1, "text": "{}"})
    await socket.dispatch({"type": "chat.message"})
    assert socket.handled == ["chat.message"]
    assert socket.sent == [] and not socket.closing


async def test_an_event_neither_handled_nor_ignored_closes_with_4011(caplog):
    socket = Quiet()
    await socket.dispatch({"type": "chat.state", "text": "{}"})
    # Accepted first, so that the client can read why.
    assert [message["type"] for message in socket.sent] == ["websocket.accept", "websocket.close"]
    assert socket.sent[-1]["code"] == CloseCode.INTERNAL_ERROR == 4011
    [record] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert "chat.state failed" in record.getMessage()
    # Closing: nothing more is acted on.
    await socket.dispatch({"type": "chat.message"})
    assert socket.handled == []


@pytest.mark.parametrize("socket", [MeConsumer, NotesConsumer])
def test_no_socket_both_handles_and_ignores_an_event(socket):
    handled = [kind for kind in socket.ignores if hasattr(socket, get_handler_name({"type": kind}))]
    assert handled == []


def test_the_page_socket_ignores_the_room_sockets_own_events():
    assert {"chat.typing", "chat.state", "chat.viewers", "chat.comment"} <= MeConsumer.ignores
    assert not hasattr(MeConsumer, "chat_typing")
