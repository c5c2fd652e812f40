"""Pages: sign-up, log-in and log-out, the pages that need a log-in, CSRF failures and
the security headers of every page.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client

from tests.conftest import PASSWORD
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


NEW_PASSWORD = "a much longer passphrase 42"


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


# --- signup -----------------------------------------------------------------


def test_signup_page_renders_a_form_with_csrf(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    content = response.content.decode()
    for name in ("username", "password1", "password2", "csrfmiddlewaretoken"):
        assert f'name="{name}"' in content


@pytest.mark.redis
def test_signup_creates_the_user_logs_in_and_redirects_to_the_lobby(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "dora", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    user = get_user_model().objects.get(username="dora")
    assert user.check_password(NEW_PASSWORD)
    assert client.session[SESSION_KEY] == str(user.pk)
    lobby = client.get("/")
    assert lobby.status_code == 200
    assert lobby.context["user"] == user


@pytest.mark.parametrize(
    "data, field",
    [
        ({"username": "dora", "password1": NEW_PASSWORD, "password2": "different"}, "password2"),
        ({"username": "", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, "username"),
        ({"username": "alice", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, "username"),
        (
            {"username": "bad name!", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
            "username",
        ),
        ({"username": "dora", "password1": "123", "password2": "123"}, "password2"),
    ],
)
@pytest.mark.redis
def test_bad_signup_re_renders_with_errors(client, alice, data, field):
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors.get(field)
    # The errors are shown to the user, not just computed.
    assert 'role="alert"' in response.content.decode()
    assert not get_user_model().objects.filter(username="dora").exists()
    assert SESSION_KEY not in client.session
    assert get_user_model().objects.count() == 1


@pytest.mark.redis
def test_signup_enforces_csrf():
    client = Client(enforce_csrf_checks=True)
    data = {"username": "dora", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert client.post("/accounts/signup/", data).status_code == 403
    assert not get_user_model().objects.filter(username="dora").exists()
    # With the token from the form, the same POST works.
    client.get("/accounts/signup/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/signup/", {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="dora").exists()


def test_signup_when_logged_in_goes_to_the_lobby(alice):
    client = logged_in(alice)
    response = client.get("/accounts/signup/")
    assert response.status_code == 302 and response.headers["Location"] == "/"


# --- login / logout ---------------------------------------------------------------


@pytest.mark.redis
def test_login_logs_in_and_redirects(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.session[SESSION_KEY] == str(alice.pk)


@pytest.mark.redis
def test_login_follows_next(client, alice, general):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD, "next": "/rooms/general/"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/rooms/general/"


@pytest.mark.redis
def test_login_never_redirects_off_site(client, alice):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD, "next": "https://evil.example.com/"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.redis
def test_login_with_a_bad_password_or_inactive_user_fails(client, alice, make_user):
    make_user("sleeper", is_active=False)
    for username, password in (("alice", "wrong"), ("sleeper", PASSWORD), ("nobody", PASSWORD)):
        response = client.post("/accounts/login/", {"username": username, "password": password})
        assert response.status_code == 200
        assert response.context["form"].non_field_errors()
        assert 'role="alert"' in response.content.decode()
        assert SESSION_KEY not in client.session


def test_login_enforces_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert SESSION_KEY not in client.session


@pytest.mark.redis
def test_logout_is_a_post(alice):
    client = logged_in(alice)
    # A GET must not log anyone out (a link or an <img> could).
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts/login/"
    assert SESSION_KEY not in client.session
    assert client.get("/").status_code == 302


def test_logout_enforces_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/accounts/logout/").status_code == 403
    assert client.session[SESSION_KEY] == str(alice.pk)


@pytest.mark.redis
def test_base_page_has_a_logout_form_with_csrf(alice, general):
    content = logged_in(alice).get("/").content.decode()
    assert 'action="/accounts/logout/"' in content
    assert 'method="post"' in content
    assert 'name="csrfmiddlewaretoken"' in content


# --- login required ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/rooms/general/", "/rooms/nope/", "/dm/bob/"])
def test_pages_require_login(client, general, bob, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/accounts/login/?next={path}"


def test_inactive_users_session_counts_as_logged_out(alice, general):
    client = logged_in(alice)
    alice.is_active = False
    alice.save()
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_login_and_signup_are_open(client, path):
    assert client.get(path).status_code == 200


# --- CSRF failures -----------------------------------------------------------------


def test_csrf_failure_is_the_sites_own_page(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert "This form has expired" in content
    assert 'href="/static/chat/chat.css"' in content
    # Not Django's page, whose inline styles the CSP would refuse.
    assert "<style" not in content and " style=" not in content


def test_csrf_failure_under_the_api_stays_json(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/api/token/", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


# --- security headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path, login",
    [
        ("/", True),
        ("/rooms/general/", True),
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
    ],
)
@pytest.mark.redis
def test_pages_carry_a_strict_content_security_policy(alice, general, path, login):
    client = logged_in(alice) if login else Client()
    response = client.get(path)
    assert response.status_code == 200
    directives = csp_directives(response)
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert "*" not in script_src
    assert directives.get("object-src") == ["'none'"]
    # Nothing in the page needs an inline script: all code comes from static files.
    content = response.content.decode()
    assert "<script>" not in content
    assert " onclick=" not in content and " onload=" not in content
