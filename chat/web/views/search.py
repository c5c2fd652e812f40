"""Search (chat/search/): the search page and /api/search/, counted alike."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat.domain import payloads
from chat.domain.attention import room_titles
from chat.domain.limits import (
    rate_place_blocking,
)
from chat.errors import ChatError
from chat.models import Room
from chat.search.parse import next_page_query, search_parse
from chat.search.ranking import (
    SEARCH_CANDIDATES,
    SEARCH_PAGE_SIZE,
    Hit,
    SearchPage,
    messages_search,
    permalink,
)
from chat.web.views.common import ERROR_STATUS, JSON_STRICT, api_view


def search_result(hit: Hit, *, user_id: int) -> dict[str, Any]:
    """A result as /api/search/ answers it."""
    message = hit.message
    return payloads.search_result_payload(
        message,
        snippet=[{"text": segment.text, "match": segment.match} for segment in hit.snippet],
        url=permalink(message),
        for_author=message.author_id == user_id,
    )


@require_GET
@api_view
def api_search(request: HttpRequest, user: User) -> JsonResponse:
    """GET /api/search/?q=...[&room=][&user=][&before=][&after=][&page=]: the messages
    the user may read that match, best first, a page at a time (chat/search/ranking.py)."""
    search = search_parse(request.GET)
    search_count(user)
    page = messages_search(user=user, search=search)
    following = next_page_query(request.GET, page)
    return JsonResponse(
        {
            "results": [search_result(hit, user_id=user.pk) for hit in page.hits],
            "next": None if following is None else f"{request.path}?{following}",
        },
        json_dumps_params=JSON_STRICT,
    )


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    """The search page: the same search as /api/search/, its form, and its results."""
    assert isinstance(request.user, User)
    user = request.user
    params = request.GET
    rooms = list(Room.objects.visible_to(user).order_by())
    titles = room_titles(rooms, user)
    context: dict[str, Any] = {
        "q": params.get("q", ""),
        "room_filter": params.get("room", ""),
        "user_filter": params.get("user", ""),
        "before": params.get("before", ""),
        "after": params.get("after", ""),
        "rooms": sorted(
            ((titles[room.pk], room.slug) for room in rooms), key=lambda room: room[0].casefold()
        ),
        "page": None,
    }
    status = 200
    if any(params.get(name) for name in ("q", "room", "user", "before", "after", "page")):
        retry_after = None
        try:
            search = search_parse(params)
            search_count(user)
            page: SearchPage = messages_search(user=user, search=search)
        except ChatError as error:
            status = ERROR_STATUS.get(error.code, 400)
            context["error"] = error.detail
            retry_after = error.retry_after
        else:
            context.update(search_page_context(request, page, titles))
        if retry_after is not None:
            context["error"] += f". Try again in {math.ceil(retry_after)} seconds."
            response = render(request, "chat/search.html", context, status=status)
            response["Retry-After"] = str(math.ceil(retry_after))
            return response
    return render(request, "chat/search.html", context, status=status)


def search_count(user: User) -> None:
    """Count one search against CHAT_SEARCH_RATE_LIMIT: ChatError(rate_limited) beyond it.

    A search reads an index over every readable room; one person's loop of them
    would take a worker's database thread from everyone else.
    """
    with rate_place_blocking(user_id=user.pk, what="searches") as place:
        place.kept = True


def search_page_context(
    request: HttpRequest, page: SearchPage, titles: dict[int, str]
) -> dict[str, Any]:
    """The results of a search as the page shows them, and its links to other pages."""
    following = next_page_query(request.GET, page)
    previous = None
    if page.page > 1:
        earlier = request.GET.copy()
        earlier["page"] = str(page.page - 1)
        previous = earlier.urlencode()
    return {
        "page": page,
        "results": [
            {
                "message": hit.message,
                "room_title": titles.get(hit.message.room_id, hit.message.room.name),
                "snippet": hit.snippet,
                "url": permalink(hit.message),
            }
            for hit in page.hits
        ],
        "next_query": following,
        "previous_query": previous,
        "first_number": (page.page - 1) * SEARCH_PAGE_SIZE + 1,
        "candidates": SEARCH_CANDIDATES,
    }
