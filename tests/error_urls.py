"""The site's URLs, and views that fail on purpose, for the tests of the error pages.

Django reads its handlers from the root URLconf: these are the site's own.
"""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import path

from chat.web.errorpages import Missing, Refused
from chatsite.urls import handler400, handler403, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail: postgres://user:hunter2@db")


def refused(request: HttpRequest) -> HttpResponse:
    raise Refused("Only the room's owners may change it.", heading="Owners only")


def denied(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("secret detail: rule 42 of the firewall")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("secret detail: a forged signature")


def missing(request: HttpRequest) -> HttpResponse:
    raise Missing("That invite is no longer valid: ask an owner for a new link.")


urlpatterns = [
    *urlpatterns,
    path("test-errors/fails/", fails),
    path("api/test-errors/fails/", fails),
    path("test-errors/refused/", refused),
    path("api/test-errors/refused/", refused),
    path("test-errors/denied/", denied),
    path("test-errors/suspicious/", suspicious),
    path("api/test-errors/suspicious/", suspicious),
    path("test-errors/missing/", missing),
]
