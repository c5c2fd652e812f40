"""Search over HTTP: GET /api/search/ and the /search/ page, on either database."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat.domain.direct import direct_room_open
from chat.models import Room
from tests.api_helpers import MESSAGE_KEYS, bearer, token_for
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def rooms(alice, bob, make_user, general):
    carol = make_user("carol")
    private = Room.objects.create(slug="ops", name="Ops", kind=Room.Kind.PRIVATE)
    private.members.add(alice, bob)
    direct = direct_room_open(user=alice, username="bob")
    return {"general": general, "private": private, "direct": direct, "carol": carol}


def api(client: Client, **params):
    return client.get("/api/search/", params)


# --- GET /api/search/ ------------------------------------------------------------------------


@pytest.mark.redis
def test_results_are_message_objects_with_their_snippet_and_permalink(rooms, alice, bob):
    mine = send(rooms["general"], alice, "Ship the release", client_id="c-1")
    theirs = send(rooms["direct"], bob, "release is out", client_id="c-2")
    response = api(logged_in(alice), q="release")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    by_id = {(result["room"], result["id"]): result for result in body["results"]}
    assert set(by_id) == {("general", mine.number), (rooms["direct"].slug, theirs.number)}
    for result in body["results"]:
        assert set(result) == MESSAGE_KEYS | {"snippet", "url"}
        assert result["url"] == f"/rooms/{result['room']}/?around={result['id']}"
        assert [s["text"] for s in result["snippet"] if s["match"]] == ["release"]
        assert "".join(s["text"] for s in result["snippet"]) == result["body"]
    # The client_id goes to its author only, as everywhere else.
    assert by_id[("general", mine.number)]["client_id"] == "c-1"
    assert by_id[(rooms["direct"].slug, theirs.number)]["client_id"] is None
    assert by_id[("general", mine.number)]["user"] == "alice"


@pytest.mark.redis
def test_next_leads_through_every_page_to_null(rooms, alice):
    sent = {send(rooms["general"], alice, f"incident {n}").number for n in range(45)}
    client = logged_in(alice)
    url = "/api/search/?q=incident&room=general"
    seen, pages = [], 0
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        seen += [result["id"] for result in body["results"]]
        pages += 1
        url = body["next"]
        if url is not None:
            assert urlsplit(url).path == "/api/search/"
            assert parse_qs(urlsplit(url).query) == {
                "q": ["incident"],
                "room": ["general"],
                "page": [str(pages + 1)],
            }
    assert pages == 3
    assert sorted(seen) == sorted(sent)


@pytest.mark.redis
def test_a_token_searches_as_its_user(rooms, alice, client):
    send(rooms["private"], alice, "token reach")
    token = token_for(client, "alice")
    response = client.get("/api/search/", {"q": "reach"}, **bearer(token))
    assert [result["body"] for result in response.json()["results"]] == ["token reach"]
    carol_token = token_for(client, "carol")
    response = client.get("/api/search/", {"q": "reach"}, **bearer(carol_token))
    assert response.json() == {"results": [], "next": None}


def test_not_signed_in_is_401(client):
    response = api(client, q="anything")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_only_get(rooms, alice):
    assert logged_in(alice).post("/api/search/?q=x").status_code == 405


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, "q is empty"),
        ({"q": ""}, "q is empty"),
        ({"q": "!!!"}, "no words"),
        ({"q": "-deploy"}, "only excludes"),
        ({"q": "deploy", "before": "last week"}, "ISO 8601"),
        ({"q": "deploy", "page": "0"}, "page must be a whole number from 1 to 25"),
        ({"q": "deploy", "page": "x"}, "page must be"),
        ({"q": "a" * 201}, "at most 200"),
    ],
)
def test_bad_requests_are_400_with_the_reason(rooms, alice, params, detail):
    response = api(logged_in(alice), **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "bad_request"
    assert detail in body["detail"]


@pytest.mark.parametrize("kind", ["private", "direct"])
@pytest.mark.redis
def test_a_room_the_user_may_not_read_answers_as_one_that_does_not_exist(rooms, alice, kind):
    send(rooms[kind], alice, "needle")
    client = logged_in(rooms["carol"])
    hidden = api(client, q="needle", room=rooms[kind].slug)
    missing = api(client, q="needle", room="no-such-room")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"error": "not_found", "detail": "no such room"}
    # Without the filter, nothing of it is found either.
    assert api(client, q="needle").json() == {"results": [], "next": None}


@pytest.mark.redis
def test_an_author_who_does_not_exist_finds_nothing(rooms, alice):
    send(rooms["general"], alice, "from alice")
    assert api(logged_in(alice), q="alice", user="nobody").json() == {"results": [], "next": None}


@pytest.mark.redis
def test_a_page_costs_the_same_queries_however_many_results(rooms, alice, bob):
    client = logged_in(alice)
    for n in range(3):
        send(rooms["general"], bob, f"metric {n} @alice")
    api(client, q="metric")  # the session and the user are cached from here on
    with CaptureQueriesContext(connection) as few:
        assert len(api(client, q="metric").json()["results"]) == 3
    for n in range(30):
        send(rooms["private"], bob, f"metric {n} @alice")
    with CaptureQueriesContext(connection) as many:
        assert len(api(client, q="metric").json()["results"]) == 20
    assert len(many) == len(few)


@pytest.mark.redis
def test_words_too_common_to_index_on_each_database(rooms, alice):
    send(rooms["general"], alice, "the")
    response = api(logged_in(alice), q="the")
    if connection.vendor == "postgresql":
        assert response.status_code == 400
        assert "not indexed" in response.json()["detail"]
    else:
        assert [result["body"] for result in response.json()["results"]] == ["the"]


# --- the /search/ page -----------------------------------------------------------------------


def test_the_page_asks_to_log_in_first(client):
    response = client.get("/search/?q=x")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/?next=/search/")


@pytest.mark.redis
def test_every_signed_in_page_has_the_search_box(rooms, alice, client):
    page = logged_in(alice).get("/").content.decode()
    assert re.search(r'<form class="site-search" method="get" action="/search/"', page)
    assert 'name="q"' in page
    assert "site-search" not in client.get("/accounts/login/").content.decode()


def test_the_page_without_a_query_is_the_form(rooms, alice):
    response = logged_in(alice).get("/search/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="search-q"' in content
    assert "search-result" not in content
    assert "form-error" not in content
    # The rooms to choose from are those the user may read, direct ones by the other person.
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', content)
    assert options == [
        ("", "All rooms"),
        (rooms["direct"].slug, "bob"),
        ("general", "General"),
        ("ops", "Ops"),
        ("random", "Random"),
    ]
    carol_page = logged_in(rooms["carol"]).get("/search/").content.decode()
    assert 'value="ops"' not in carol_page and rooms["direct"].slug not in carol_page


@pytest.mark.redis
def test_the_page_shows_ranked_results_marked_and_linked(rooms, alice, bob):
    message = send(rooms["direct"], bob, "deploy <script>alert('x')</script> now")
    response = logged_in(alice).get("/search/", {"q": "deploy"})
    assert response.status_code == 200
    content = response.content.decode()
    assert f'href="/rooms/{rooms["direct"].slug}/?around={message.number}"' in content
    snippet = re.search(r'<span class="search-snippet">(.*?)</span>', content, re.S)[1]
    assert snippet == "<mark>deploy</mark> &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; now"
    assert html.unescape(re.sub("</?mark>", "", snippet)) == message.body
    assert '<span class="search-result-room">bob</span>' in content
    assert '<span class="author">bob</span>' in content
    assert "<script>alert" not in content


@pytest.mark.redis
def test_the_page_keeps_its_filters_and_pages(rooms, alice):
    for n in range(25):
        send(rooms["general"], alice, f"build {n}")
    client = logged_in(alice)
    first = client.get("/search/", {"q": "build", "room": "general", "after": "2020-01-01"})
    content = first.content.decode()
    assert content.count('class="search-result"') == 20
    assert '<option value="general" selected>' in content
    assert 'name="after" value="2020-01-01"' in content
    following = html.unescape(re.search(r'<a rel="next" href="\?([^"]+)"', content)[1])
    assert parse_qs(following) == {
        "q": ["build"],
        "room": ["general"],
        "after": ["2020-01-01"],
        "page": ["2"],
    }
    second = client.get(f"/search/?{following}").content.decode()
    assert second.count('class="search-result"') == 5
    assert 'rel="next"' not in second
    assert '<ol class="search-results" start="21">' in second
    previous = html.unescape(re.search(r'<a rel="prev" href="\?([^"]+)"', second)[1])
    assert parse_qs(previous)["page"] == ["1"]


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"q": "-only"}, 400, "q only excludes words"),
        ({"q": "x", "before": "soon"}, 400, "ISO 8601"),
        ({"q": "x", "room": "ops"}, 404, "no such room"),
        ({"q": "x", "room": "nothing-here"}, 404, "no such room"),
    ],
)
@pytest.mark.redis
def test_the_page_says_what_is_wrong(rooms, params, status, text):
    response = logged_in(rooms["carol"]).get("/search/", params)
    assert response.status_code == status
    content = response.content.decode()
    assert re.search(r'<p class="form-error search-error" role="alert">([^<]*)</p>', content)[1]
    assert text in html.unescape(content)
    assert "search-result" not in content


@pytest.mark.redis
def test_the_page_says_when_nothing_was_found(rooms, alice):
    content = logged_in(alice).get("/search/", {"q": "absent"}).content.decode()
    assert "Nothing found." in content


# --- the rate limit --------------------------------------------------------------------------


@pytest.mark.redis
def test_searches_are_limited_per_person_on_the_api_and_the_page(rooms, alice, bob, settings):
    settings.CHAT_SEARCH_RATE_LIMIT = (3, 60)
    send(rooms["general"], alice, "release notes")
    client = logged_in(alice)
    assert [api(client, q="release").status_code for _ in range(2)] == [200, 200]
    assert client.get("/search/", {"q": "release"}).status_code == 200
    refused = api(client, q="release")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited" and refused.json()["retry_after"] > 0
    assert int(refused["Retry-After"]) >= 1
    page = client.get("/search/", {"q": "release"})
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1
    assert "Try again in" in html.unescape(page.content.decode())
    # Per person: bob searches on.
    assert api(logged_in(bob), q="release").status_code == 200
    # The form alone, with nothing asked, is not a search.
    assert client.get("/search/").status_code == 200
