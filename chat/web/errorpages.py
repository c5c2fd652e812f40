"""The site's own pages for 400, 403, 404 and 500 (chatsite.urls names them as Django's
handlers), and JSON in their place under /api/, whose clients never get HTML.

A page says why it is refused only in the site's own words: a view raises
Missing (a 404) or Refused (a 403) with a reason written for the reader; any
other Http404 or PermissionDenied (Django's, a library's) gets the general
words, whatever its message says. A private room someone may not read is
Missing with the same words as a room that does not exist.

The 500 page is rendered without the request and with an empty context, as
Django renders its own: whatever failed (the database, a context processor)
is not asked again.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseServerError,
    JsonResponse,
)
from django.template import loader
from django.urls import reverse
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger(__name__)

# Where a page's way back leads when the view names none.
BACK_TO_ROOMS = ("chat:lobby", "Back to the rooms")

# The reasons a missing room gives: the same for a room that does not exist and for
# a private one the reader is not in, so that the page tells a stranger nothing.
NO_SUCH_ROOM = (
    "There is no room at this address, or it is private and you are not one of its members."
)

# What the 500 page is when even its template fails: plain, with no style, no script.
BARE_500 = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Something went wrong</title>"
    "<h1>Something went wrong</h1><p>The site failed to answer this request, and has logged"
    " why. Try again in a moment.</p><p><a href=/>Back to the rooms</a></p>"
)


class _Said(Exception):
    """A refusal whose page gives `reason` under `heading`, and a way back: `back`, a
    URL and its label (the rooms by default)."""

    def __init__(self, reason: str, *, heading: str, back: tuple[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.heading = heading
        self.back = back


class Missing(_Said, Http404):
    """A 404 that says why, in the site's own words."""

    def __init__(
        self,
        reason: str,
        *,
        heading: str = "Not found",
        back: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(reason, heading=heading, back=back)


class Refused(_Said, PermissionDenied):
    """A 403 that says why, in the site's own words."""

    def __init__(
        self,
        reason: str,
        *,
        heading: str = "Not allowed",
        back: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(reason, heading=heading, back=back)


def is_api(request: HttpRequest) -> bool:
    """Whether the request is the JSON API's, which answers JSON whatever happens."""
    return request.path_info.startswith("/api/")


def _api_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def _context(exception: Exception) -> dict[str, str]:
    """What a page says of `exception`: its reason if it is the site's own, and the way back."""
    url, label = reverse(BACK_TO_ROOMS[0]), BACK_TO_ROOMS[1]
    context: dict[str, str] = {}
    if isinstance(exception, _Said):
        context = {"heading": exception.heading, "reason": exception.reason}
        if exception.back is not None:
            url, label = exception.back
    return {**context, "back_url": url, "back_label": label}


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400: a request the site refuses to read (a bad Host, too many fields)."""
    if is_api(request):
        return _api_error(400, "bad_request", "the request could not be read")
    body = loader.render_to_string("400.html", _context(exception), request)
    return HttpResponseBadRequest(body)


def _said_page(
    request: HttpRequest,
    exception: Exception,
    *,
    status: int,
    code: str,
    said: type[_Said],
    general: str,
) -> HttpResponse:
    """A 403 or 404: the site's page, with the reason the site's own exception gives
    (`general` for any other, whatever its message says); JSON under /api/."""
    reason = exception.reason if isinstance(exception, said) else general
    if is_api(request):
        return _api_error(status, code, reason)
    body = loader.render_to_string(f"{status}.html", _context(exception), request)
    return HttpResponse(body, status=status)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403: the site's page, with the reason a Refused gives."""
    return _said_page(
        request, exception, status=403, code="forbidden", said=Refused, general="not allowed"
    )


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404: the site's page, with the reason a Missing gives."""
    return _said_page(
        request, exception, status=404, code="not_found", said=Missing, general="no such address"
    )


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """500: the site's page, rendered from nothing but its template (see the module)."""
    if is_api(request):
        return _api_error(500, "internal_error", "the server failed; it logged why")
    try:
        body = loader.get_template("500.html").render()
    except Exception:
        # The page of last resort must not fail in turn (a missing static manifest, say).
        logger.exception("the 500 page could not be rendered")
        body = BARE_500
    return HttpResponseServerError(body)
