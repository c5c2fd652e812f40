"""People to talk to (chat/domain/people.py): the people page and /api/users/, counted alike."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat.domain.limits import (
    rate_place_blocking,
)
from chat.domain.people import PEOPLE_LIMIT_MAX, people_find, people_query, person_payload
from chat.errors import ChatError
from chat.web.views.common import ERROR_STATUS, JSON_STRICT, api_view


def people_count(user: User) -> None:
    """Count one look-up of people against CHAT_PEOPLE_RATE_LIMIT (the picker asks as
    one types): ChatError(rate_limited) beyond it."""
    with rate_place_blocking(user_id=user.pk, what="people") as place:
        place.kept = True


@require_GET
@api_view
def api_users(request: HttpRequest, user: User) -> JsonResponse:
    """GET /api/users/?q=<name>[&limit=<n>]: people to talk to, by name (docs/protocol.md)."""
    query, limit = people_query(request.GET)
    people_count(user)
    found = people_find(user=user, query=query, limit=limit)
    return JsonResponse(
        {"users": [person_payload(person) for person in found.people], "more": found.more},
        json_dumps_params=JSON_STRICT,
    )


@login_required
def people_page(request: HttpRequest) -> HttpResponse:
    """Everyone one may talk to, or those a name finds: each opens the conversation."""
    assert isinstance(request.user, User)
    context: dict[str, Any] = {"q": request.GET.get("q", ""), "found": None}
    try:
        query, _ = people_query(request.GET)
        people_count(request.user)
        context["found"] = people_find(user=request.user, query=query, limit=PEOPLE_LIMIT_MAX)
    except ChatError as error:
        wait = None if error.retry_after is None else math.ceil(error.retry_after)
        context["error"] = error.detail
        if wait is not None:
            context["error"] += f". Try again in {wait} seconds."
        status = ERROR_STATUS.get(error.code, 400)
        response = render(request, "chat/people.html", context, status=status)
        if wait is not None:
            response["Retry-After"] = str(wait)
        return response
    return render(request, "chat/people.html", context)
