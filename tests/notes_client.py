"""A notes client for tests: pycrdt's own y-protocols helpers over a WebsocketCommunicator."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from chat.notes import codec
from chat.web.tokens import token_issue
from tests.conftest import with_host


class NotesClient:
    """One editor: a pycrdt Doc kept in sync with the server, as y-websocket's provider does."""

    def __init__(self, communicator: WebsocketCommunicator, doc: Doc | None = None) -> None:
        self.communicator = communicator
        self.doc: Doc = doc or Doc()
        self.text = self.doc.get("notes", type=Text)
        self.outgoing: list[bytes] = []
        self.denied: list[str] = []
        self.acked = 0
        self.awareness: list[bytes] = []
        self.subscription = self.doc.observe(self.changed)
        self.applying = False

    def changed(self, event: Any) -> None:
        if not self.applying:
            self.outgoing.append(event.update)

    async def flush(self) -> None:
        """Send the local edits made since the last flush, one update message each."""
        updates, self.outgoing = self.outgoing, []
        for update in updates:
            await self.communicator.send_to(bytes_data=create_update_message(update))

    async def edit(self, text: str, index: int | None = None) -> None:
        self.text.insert(len(self.text) if index is None else index, text)
        await self.flush()

    async def send(self, data: bytes) -> None:
        await self.communicator.send_to(bytes_data=data)

    async def handle(self, output: dict[str, Any]) -> None:
        assert output["type"] == "websocket.send", output
        data = output["bytes"]
        assert data is not None, output
        if data[0] == YMessageType.SYNC:
            self.applying = True
            try:
                reply = handle_sync_message(data[1:], self.doc)
            finally:
                self.applying = False
            if reply is not None:
                await self.send(reply)
        elif data[0] == YMessageType.AWARENESS:
            self.awareness.append(data)
        elif data[0] == codec.AUTH:
            self.denied.append(codec.Reader(data[2:]).var_string())
        elif data[0] == codec.ACKED:
            self.acked = codec.Reader(data[1:]).var_uint()
        else:
            raise AssertionError(f"unexpected message {data[:8]!r}")

    async def pump(self, timeout: float = 0.3) -> None:
        """Handle whatever arrives until nothing has for `timeout` seconds."""
        while not await self.communicator.receive_nothing(timeout):
            output = await self.communicator.receive_output()
            if output["type"] == "websocket.close":
                raise AssertionError(f"closed with {output.get('code')}")
            await self.handle(output)

    async def until(self, condition: Any, timeout: float = 5) -> None:
        """Handle messages until `condition()` holds."""
        async with asyncio.timeout(timeout):
            while not condition():
                await self.handle(await self.communicator.receive_output(timeout))

    async def closed_with(self, timeout: float = 3) -> int:
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return int(output["code"])

    async def sync(self) -> None:
        """The handshake: answer the server's step 1, send ours, take its step 2."""
        await self.send(create_sync_message(self.doc))
        await self.pump()

    def __str__(self) -> str:
        return str(self.text)


async def notes_open(
    user: Any,
    slug: str = "general",
    *,
    doc: Doc | None = None,
    query: str = "",
    sync: bool = True,
) -> NotesClient:
    """A notes socket to `slug` as `user` (by token; None: no token), synced unless told."""
    from chatsite.asgi import application

    params = []
    if user is not None:
        params.append("token=" + await sync_to_async(token_issue)(user=user))
    if query:
        params.append(query)
    path = f"/ws/rooms/{slug}/notes/" + ("?" + "&".join(params) if params else "")
    communicator = WebsocketCommunicator(application, path, headers=with_host(None))
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    client = NotesClient(communicator, doc)
    if sync:
        await client.sync()
    return client


def step(message_type: int, payload: bytes) -> bytes:
    """A sync message of `message_type` (YSyncMessageType) carrying `payload`."""
    return bytes([YMessageType.SYNC, message_type]) + codec.var_bytes(payload)


UPDATE = YSyncMessageType.SYNC_UPDATE
