"""Serving files (docs/files.md): to whoever may read their message's room, else 404."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_http_methods

from chat.domain.bots import bot_key_check, looks_like_key
from chat.errors import ChatError
from chat.files.attachments import attachment_for_reader
from chat.files.serving import file_response
from chat.models import BotKey
from chat.web.errorpages import Missing
from chat.web.tokens import token_check
from chat.web.views.common import bearer


def file_reader(request: HttpRequest) -> tuple[Any, BotKey | None]:
    """Who fetches a file: a Bearer token's user, a bot key (and its bot), else the
    session's user."""
    token = bearer(request)
    if token is None:
        return request.user, None
    if looks_like_key(token):
        key = bot_key_check(token)
        return (key.user, key) if key is not None else (AnonymousUser(), None)
    return token_check(token).user or AnonymousUser(), None


@require_http_methods(["GET", "HEAD"])
def file_download(request: HttpRequest, pk: int, name: str) -> HttpResponseBase:
    """GET /files/<id>/<name>: the file, to whoever may read its message's room; else 404.

    The name is the file's own, for the reader's sake: the id alone says which.
    """
    return _file(request, pk, thumbnail=False)


@require_http_methods(["GET", "HEAD"])
def file_thumbnail(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET /files/<id>/thumbnail/: an image's thumbnail (WebP), as the file itself is served."""
    return _file(request, pk, thumbnail=True)


def _file(request: HttpRequest, pk: int, *, thumbnail: bool) -> HttpResponseBase:
    reader, key = file_reader(request)
    missing = Missing(
        "There is no file at this address, or you may not open it.", heading="No such file"
    )
    try:
        attachment = attachment_for_reader(user=reader, pk=pk)
    except ChatError:
        raise missing from None
    if key is not None and not key_may_fetch(key, attachment):
        raise missing
    if thumbnail and not attachment.thumbnail:
        raise missing
    return file_response(request, attachment, thumbnail=thumbnail)


def key_may_fetch(key: BotKey, attachment: Any) -> bool:
    """A bot key fetches its bot's own uploads and the files of its rooms' messages only."""
    if attachment.uploader_id == key.user_id:
        return True
    message = attachment.message
    return message is not None and key.rooms.filter(pk=message.room_id).exists()
