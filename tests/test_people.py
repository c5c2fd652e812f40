"""Finding people: GET /api/users/ and the people page (chat/domain/people.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat.domain.bots import bot_account, bot_key_issue
from chat.domain.people import people_query
from chat.errors import ChatError
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


def usernames(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [person["username"] for person in response.json()["users"]]


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.fixture
def people(alice, bob, make_user):
    """alice asks; bob, others by name, one who left, and two accounts that are not people."""
    make_user("Bobby")
    make_user("rebob")
    make_user("carol", first_name="Ann", last_name="Smith")
    make_user("dave")
    make_user("bobsleigh", is_active=False)
    bot_account("bobbot")  # a bot publishes with keys: nobody to talk to
    bot_account("announcements")  # the publisher's account


# --- the API --------------------------------------------------------------------------


@pytest.mark.redis
def test_users_finds_people_by_name_best_first(alice, people):
    client = logged_in(alice)
    response = client.get("/api/users/?q=bob")
    # The exact name, then names that start with it, then the rest; without case.
    assert usernames(response) == ["bob", "Bobby", "rebob"]
    assert response.json() == {
        "users": [
            {"username": "bob", "name": "", "url": "/dm/bob/"},
            {"username": "Bobby", "name": "", "url": "/dm/Bobby/"},
            {"username": "rebob", "name": "", "url": "/dm/rebob/"},
        ],
        "more": False,
    }
    assert usernames(client.get("/api/users/?q=BOBBY")) == ["Bobby"]
    assert usernames(client.get("/api/users/?q=%20%20ob%20")) == ["bob", "Bobby", "rebob"]


@pytest.mark.redis
def test_users_finds_first_and_last_names_every_word(alice, people):
    client = logged_in(alice)
    assert client.get("/api/users/?q=smith").json()["users"] == [
        {"username": "carol", "name": "Ann Smith", "url": "/dm/carol/"}
    ]
    assert usernames(client.get("/api/users/?q=ann+smi")) == ["carol"]
    assert usernames(client.get("/api/users/?q=ann+jones")) == []
    assert usernames(client.get("/api/users/?q=zzz")) == []


@pytest.mark.redis
def test_users_leave_out_the_inactive_bots_and_the_caller(alice, bob, people):
    everyone = usernames(logged_in(alice).get("/api/users/"))
    # No query: everyone, by name without case.
    assert everyone == ["bob", "Bobby", "carol", "dave", "rebob"]
    assert "alice" in usernames(logged_in(bob).get("/api/users/"))
    assert "bob" not in usernames(logged_in(bob).get("/api/users/"))
    for name in ("bobsleigh", "bobbot", "announcements"):
        assert usernames(logged_in(alice).get(f"/api/users/?q={name}")) == []


@pytest.mark.redis
def test_users_are_bounded_and_say_when_more_match(alice, make_user):
    for index in range(55):
        make_user(f"person{index:02}")
    client = logged_in(alice)
    body = client.get("/api/users/?q=person").json()
    assert len(body["users"]) == 20 and body["more"] is True
    body = client.get("/api/users/?q=person&limit=50").json()
    assert len(body["users"]) == 50 and body["more"] is True
    assert body["users"][0]["username"] == "person00"
    body = client.get("/api/users/?q=person5&limit=5").json()
    assert [person["username"] for person in body["users"]] == [f"person5{i}" for i in range(5)]
    assert body["more"] is False
    # The page shows 50 at most, and says others match.
    content = client.get("/people/?q=person").content.decode()
    assert content.count('class="person"') == 50
    assert "The first 50 people matching “person”: type more of a name" in content


@pytest.mark.redis
def test_users_take_one_query_however_many_match(alice, make_user):
    client = logged_in(alice)
    client.get("/api/users/?q=x")  # the session, read once
    for index in range(3):
        make_user(f"few{index}")
    with CaptureQueriesContext(connection) as few:
        assert len(usernames(client.get("/api/users/?q=few"))) == 3
    for index in range(30):
        make_user(f"many{index}")
    with CaptureQueriesContext(connection) as many:
        assert len(usernames(client.get("/api/users/?q=many"))) == 20
    assert len(many) == len(few)


def test_users_need_a_signed_in_caller(alice, people):
    assert_json_error(Client().get("/api/users/?q=bob"), 401, "unauthenticated")
    response = Client().get("/api/users/?q=bob", HTTP_AUTHORIZATION="Bearer nonsense")
    assert_json_error(response, 401, "unauthenticated")


@pytest.mark.redis
def test_users_answer_a_bearer_token_and_refuse_a_bot_key(client, alice, general, people):
    token = client.post(
        "/api/token/",
        {"username": "alice", "password": "correct horse battery staple"},
        content_type="application/json",
    ).json()["token"]
    response = Client().get("/api/users/?q=dave", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert usernames(response) == ["dave"]
    _, key = bot_key_issue(user=bot_account("scorebot"), rooms=[general])
    response = Client().get("/api/users/?q=dave", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_json_error(response, 403, "forbidden")


@pytest.mark.parametrize(
    "query, says",
    [
        ("q=" + "a" * 151, "at most 150 characters"),
        ("q=a+b+c+d+e+f", "at most 5 words"),
        ("q=bo%00b", "NUL"),
        ("q=bob&limit=0", "limit must be"),
        ("q=bob&limit=51", "limit must be"),
        ("q=bob&limit=ten", "limit must be"),
        ("q=bob&limit=-1", "limit must be"),
        ("q=bob&limit=", "limit must be"),
        ("q=bob&limit=%D9%A3", "limit must be"),  # an Arabic-Indic 3: a digit, not ASCII
    ],
)
def test_users_refuse_bad_input_saying_why(alice, people, query, says):
    response = logged_in(alice).get(f"/api/users/?{query}")
    assert_json_error(response, 400, "bad_request")
    assert says in response.json()["detail"]


def test_an_unpaired_surrogate_is_refused():
    # A query string cannot carry one (it is decoded with replacement): asked directly.
    with pytest.raises(ChatError, match="unpaired surrogate"):
        people_query({"q": "bo\ud800b"})


def test_users_is_get_only(alice):
    client = logged_in(alice)
    assert client.post("/api/users/", {"q": "bob"}).status_code == 405


@pytest.mark.redis
def test_users_are_rate_limited_and_bad_input_does_not_count(alice, people, settings):
    settings.CHAT_PEOPLE_RATE_LIMIT = (2, 60)
    client = logged_in(alice)
    assert client.get("/api/users/?q=" + "a" * 151).status_code == 400
    assert usernames(client.get("/api/users/?q=bob")) == ["bob", "Bobby", "rebob"]
    assert usernames(client.get("/api/users/?q=dave")) == ["dave"]
    refused = client.get("/api/users/?q=carol")
    assert_json_error(refused, 429, "rate_limited")
    assert 0 < refused.json()["retry_after"] <= 60
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The page counts against the same limit.
    page = client.get("/people/?q=carol")
    assert page.status_code == 429
    assert "Try again in" in page.content.decode()
    assert page.headers["Retry-After"]


# --- the page ---------------------------------------------------------------------------


def test_people_page_needs_a_log_in(client):
    response = client.get("/people/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


@pytest.mark.redis
def test_people_page_lists_everyone_each_opening_a_conversation(alice, people):
    response = logged_in(alice).get("/people/")
    assert response.status_code == 200
    content = response.content.decode()
    for name in ("bob", "Bobby", "carol", "dave", "rebob"):
        assert f'href="/dm/{name}/"' in content
    for name in ("alice", "bobsleigh", "bobbot", "announcements"):
        assert f'href="/dm/{name}/"' not in content
    assert "Ann Smith" in content
    assert "Everyone here: 5 people." in content
    # The picker's box, and its script.
    assert 'role="combobox"' in content and "/static/chat/people.js" in content


@pytest.mark.redis
def test_people_page_finds_by_name(alice, people):
    content = logged_in(alice).get("/people/?q=bob").content.decode()
    assert 'value="bob"' in content
    assert "3 people matching “bob”." in content
    assert content.index('href="/dm/bob/"') < content.index('href="/dm/Bobby/"')
    assert 'href="/dm/dave/"' not in content
    content = logged_in(alice).get("/people/?q=nobody-at-all").content.decode()
    assert "Nobody here is called “nobody-at-all”." in content


@pytest.mark.redis
def test_people_page_escapes_names(alice, make_user):
    make_user("mallory", first_name="<b>Mal</b>")
    content = logged_in(alice).get("/people/?q=mal").content.decode()
    assert "&lt;b&gt;Mal&lt;/b&gt;" in content and "<b>Mal</b>" not in content


def test_people_page_says_what_is_wrong_with_a_query(alice):
    response = logged_in(alice).get("/people/?q=" + "a" * 151)
    assert response.status_code == 400
    assert "q has at most 150 characters" in response.content.decode()


@pytest.mark.redis
def test_the_header_and_the_lobby_lead_to_people(alice, general):
    content = logged_in(alice).get("/").content.decode()
    assert 'href="/people/"' in content  # the header's link
    assert 'id="lobby-people"' in content and 'action="/people/"' in content  # the picker
