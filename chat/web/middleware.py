"""The edges in front of the views and consumers: CSP, the socket's Origin rule, socket auth."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from chat.platform.db import database_sync_to_async
from chat.protocol import CloseCode
from chat.web.tokens import token_check

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


def content_security_policy() -> str:
    """The pages' policy; images may also come from the file store (CHAT_FILES_ORIGINS:
    an S3-compatible store, which /files/ redirects to)."""
    image_sources = " ".join(["'self'", "data:", *settings.CHAT_FILES_ORIGINS])
    return CONTENT_SECURITY_POLICY.replace("img-src 'self' data:", f"img-src {image_sources}")


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """No inline scripts or styles, no third-party hosts: bodies can never run."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The admin ships inline scripts of its own; everything else is strict.
        # (A file served from /files/ has a stricter policy of its own.)
        if not request.path.startswith("/admin/"):
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


def header(scope: Scope, name: bytes) -> str | None:
    """One request header of an ASGI scope, decoded."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def origin_allowed(origin: str, scope: Scope) -> bool:
    """Django's CSRF rule for the Origin of a socket: the site's own origin as this request
    reached it (scheme, host and port), or one of CSRF_TRUSTED_ORIGINS.

    The request's host is its Host header, which must be one of ALLOWED_HOSTS; its
    scheme is https for wss, or behind a proxy that says so in SECURE_PROXY_SSL_HEADER
    (as request.is_secure() decides for a page). Host names compare without case.
    """
    origin = origin.lower()
    host = (header(scope, b"host") or "").lower()
    domain, _ = split_domain_port(host)
    if domain and validate_host(domain, settings.ALLOWED_HOSTS):
        scheme = "https" if _secure(scope) else "http"
        if origin == f"{scheme}://{host}":
            return True
    trusted = [entry.lower() for entry in settings.CSRF_TRUSTED_ORIGINS]
    if origin in trusted:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return any(
        is_same_domain(parts.netloc, entry.split("://", 1)[1].lstrip("*"))
        for entry in trusted
        if "://*." in entry and entry.split("://", 1)[0] == parts.scheme
    )


def _secure(scope: Scope) -> bool:
    if scope.get("scheme") == "wss":
        return True
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header is None:
        return False
    name, value = proxy_header
    # HTTP_X_FORWARDED_PROTO -> x-forwarded-proto
    wanted = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
    return (header(scope, wanted) or "").split(",")[0].strip() == value


class OriginGate:
    """Refuse sockets from foreign pages at the handshake (HTTP 403): an Origin that is
    not the site's own (origin_allowed, Django's CSRF rule for forms).

    A socket with no Origin header is not from a browser: it may authenticate
    with a token only, never with a cookie (scope["cookie_auth"] is False).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.denier = WebsocketDenier.as_asgi()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        origin = header(scope, b"origin")
        if origin is not None and not origin_allowed(origin, scope):
            return await self.denier(scope, receive, send)
        return await self.app({**scope, "cookie_auth": origin is not None}, receive, send)


class SocketSessionMiddleware:
    """scope["session"]: the session named by the cookie (read when first used).

    Channels' SessionMiddleware also wraps `send`, to save a changed session
    with an HTTP response; a socket never sends one, yet the wrapper looked
    at the session on every frame a socket sent. Wrap in Channels'
    CookieMiddleware, which parses the cookies.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        session_key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        return await self.app({**scope, "session": self.store(session_key)}, receive, send)


class SocketAuthMiddleware:
    """Sets scope["user"] from `?token=` or, for browsers, the session.

    scope["auth_close_code"] says why a socket is not authenticated (4401, 4403);
    scope["auth_session_key"] names the session a browser's socket belongs to
    (logging out of it closes the socket).
    Wrap in SocketSessionMiddleware, which finds the session.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        user: Any = AnonymousUser()
        close_code: int | None = CloseCode.UNAUTHENTICATED
        session_key: str | None = None
        try:
            if "token" in query:
                check = await database_sync_to_async(token_check)(query["token"][0])
                if check.user is not None:
                    user, close_code = check.user, None
                else:
                    close_code = check.close_code
            elif scope.get("cookie_auth"):
                # Channels' get_user reads the session; a deactivated user reads as anonymous.
                user = await get_user(scope)
                if user.is_authenticated:
                    close_code = None
                    session_key = scope["session"].session_key
        except DataError:
            # A value no row can hold (a NUL in the session cookie): no such
            # session. Uncaught, it would crash the handshake without a code.
            user, close_code = AnonymousUser(), CloseCode.UNAUTHENTICATED
        except DatabaseError:
            # The database cannot serve now: accepted, then closed with 4013.
            logger.warning("database unavailable at socket auth", exc_info=True)
            user, close_code = AnonymousUser(), CloseCode.TRY_AGAIN_LATER
        return await self.app(
            {**scope, "user": user, "auth_close_code": close_code, "auth_session_key": session_key},
            receive,
            send,
        )
