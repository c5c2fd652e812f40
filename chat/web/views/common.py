"""What several views share: the JSON API's door and its error answers, strict
JSON bodies and query numbers, the rooms one can see."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from chat import protocol
from chat.domain import payloads, presence
from chat.domain.attention import room_entries
from chat.domain.bots import bot_key_check, looks_like_key
from chat.errors import ChatError
from chat.models import BotKey
from chat.web.tokens import token_check

PAGE_SIZE = 50
JSON_STRICT = {"ensure_ascii": False, "allow_nan": False}


def rooms_payload(user: User) -> list[dict[str, Any]]:
    """The rooms `user` can see, as /api/rooms/ and the lobby show them."""
    entries = room_entries(user)
    online = presence.online_counts([entry.room.pk for entry in entries])
    return [
        payloads.room_entry_payload(entry, online=online.get(entry.room.pk, 0)) for entry in entries
    ]


def api_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


# HTTP statuses of the protocol's error codes; anything else is 400.
ERROR_STATUS = {
    "not_found": 404,
    "forbidden": 403,
    "muted": 403,
    "room_archived": 403,
    "rate_limited": 429,
    "unavailable": 503,
    "too_large": 413,
    "over_quota": 413,
    "conflict": 409,
    "last_owner": 409,
    "invite_invalid": 410,
}


def bearer(request: HttpRequest) -> str | None:
    """The token of `Authorization: Bearer <token>` ("" for the scheme with no token,
    which is refused as a wrong one), or None without a Bearer header."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return None


def api_unauthenticated(detail: str) -> JsonResponse:
    """401, with the scheme to authenticate by (RFC 6750)."""
    response = api_error(401, "unauthenticated", detail)
    response["WWW-Authenticate"] = 'Bearer realm="chatsite"'
    return response


def api_view(view: Callable[..., HttpResponse] | None = None, *, keys: bool = False) -> Any:
    """The JSON API's door: who calls, and every refusal as JSON.

    The caller is a bot key or a user's token (`Authorization: Bearer`), else
    the session, which must carry the CSRF token on a write (a Bearer request
    carries no cookie, so CSRF does not apply to it). `request.bot_key` is
    the key, or None. A key acts only where `keys` is set (publishing into
    its rooms, reading their history, uploading, a room's state): anywhere
    else it is 403. 401 instead of a login redirect; a ChatError is answered
    with its code and ERROR_STATUS, a wait as 429 with Retry-After.
    """
    if view is None:
        return lambda view: api_view(view, keys=keys)

    @csrf_exempt  # checked below, for the session
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = bearer(request)
        key: BotKey | None = None
        user: Any
        if token is not None and looks_like_key(token):
            key = bot_key_check(token)
            if key is None:
                return api_unauthenticated("wrong or revoked key")
            if not keys:
                return api_error(
                    403, "forbidden", "a bot key publishes into its rooms and reads them, no more"
                )
            user = key.user
        elif token is not None:
            check = token_check(token)
            user = check.user if check.user is not None else AnonymousUser()
        else:
            user = request.user
            # CSRF guards a signed-in session's writes; with no session there is
            # nothing to guard, and the answer is that the caller is not known.
            if user.is_authenticated and request.method not in ("GET", "HEAD", "OPTIONS"):
                refused = csrf_protect(lambda request: None)(request)
                if refused is not None:
                    return refused
        if not user.is_authenticated:
            if token == "":
                return api_unauthenticated("Authorization: Bearer needs a token or a bot key")
            return api_unauthenticated("log in or send a Bearer token")
        request.bot_key = key  # type: ignore[attr-defined]
        try:
            return view(request, user, *args, **kwargs)
        except ChatError as error:
            return api_refusal(error)

    return wrapper


def api_refusal(error: ChatError) -> JsonResponse:
    """A ChatError as the API answers it: {error, detail} and the numbers it carries
    (a limit, a quota and what is used of it, a wait), with the code's status
    (ERROR_STATUS) and Retry-After."""
    body: dict[str, Any] = {"error": error.code, "detail": error.detail}
    if error.limit is not None:
        body["limit"] = error.limit
    if error.quota is not None:
        body["quota"], body["used"] = error.quota, error.used
    if error.retry_after is not None:
        body["retry_after"] = error.retry_after
    response = JsonResponse(body, status=ERROR_STATUS.get(error.code, 400))
    if error.retry_after is not None:
        response["Retry-After"] = str(math.ceil(error.retry_after))
    return response


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body, read as strictly as a socket's frames, or ChatError(bad_request)."""
    return protocol.decode(request.body, noun="body")


def json_object(request: HttpRequest) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise ChatError("bad_request", "the body is not a JSON object")
    return body


def query_number(request: HttpRequest, name: str, *, low: int, high: int) -> int | None:
    """An optional whole-number query parameter within [low, high], or bad_request."""
    raw = request.GET.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 30 or not low <= int(raw) <= high:
        raise ChatError("bad_request", f"{name} must be a whole number from {low} to {high}")
    return int(raw)
