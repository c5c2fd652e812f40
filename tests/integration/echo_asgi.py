"""A WebSocket echo ASGI application, for protocol conformance runs only.

Contract: every WebSocket connection, on any path, is accepted; each text message is
sent back as text and each binary message as bytes, unchanged and in order; when the
client disconnects the application returns. Any HTTP request gets a plain 404.
The site never serves this: it exists so a fuzzing client can drive daphne's WebSocket
layer with exactly the production daphne arguments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await _echo(receive, send)
    elif scope["type"] == "http":
        await _not_found(receive, send)


async def _echo(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            # Echo the frame's own kind: a text message stays text, bytes stay bytes.
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif kind == "websocket.disconnect":
            return


async def _not_found(receive: Receive, send: Send) -> None:
    # Drain the request body so daphne sees a complete exchange.
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"not found"})
