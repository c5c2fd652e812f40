"""The upload limit at the ASGI edge: an oversized upload is refused before Django reads it.

Django's ASGI handler copies a request's whole body (into a temporary file)
before any view runs, so a view can only refuse an upload it has been given.
In front of it, this refuses `POST /api/uploads/` with 413 `too_large` when
its Content-Length says it is over the limit, before Django reads any of it;
and, for a body sent without one (chunked), as soon as the bytes read pass
the limit. The limit is CHAT_UPLOAD_MAX_BYTES plus CHAT_UPLOAD_OVERHEAD_BYTES
for the multipart framing; the view checks the file's own size exactly.

daphne itself hands an application only whole requests (it has received the
body, to a temporary file past 100 KB, by then): what keeps a large body from
reaching a worker at all is nginx's client_max_body_size, in front of it in
deployment (deploy/nginx/chat.conf), which answers from the Content-Length.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.urls import reverse

from chat.files.attachments import upload_limit_error

Scope = dict[str, Any]


def body_limit() -> int:
    """The most bytes an upload's request body may have."""
    return settings.CHAT_UPLOAD_MAX_BYTES + settings.CHAT_UPLOAD_OVERHEAD_BYTES


class UploadLimit:
    """ASGI middleware for HTTP: 413 for an upload over the limit, early."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.path: str | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if self.path is None:
            self.path = reverse("chat:api-uploads")
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        limit = body_limit()
        if content_length(scope) > limit:
            return await too_large(send)
        received = 0
        over = False

        async def counted() -> dict[str, Any]:
            nonlocal received, over
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django stops reading and answers nothing; the 413 is sent below.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)
        if over:
            await too_large(send)


def content_length(scope: Scope) -> int:
    """The request's Content-Length, or 0 when it has none (or a malformed one)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def too_large(send: Any) -> None:
    """The API's 413: {"error": "too_large", "detail", "limit"}, closing the connection."""
    error = upload_limit_error()
    body = json.dumps({"error": error.code, "detail": error.detail, "limit": error.limit}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
