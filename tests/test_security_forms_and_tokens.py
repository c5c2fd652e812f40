"""Security: every form needs its CSRF token, a token cannot be altered to name another
user, and `manage.py check --deploy` is clean under the documented environment.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client

from chat.web.tokens import SALT, token_issue
from tests.conftest import PASSWORD
from tests.security_helpers import BASE_DIR, PRIVATE_NAME, Page, first_output_is_close
from tests.security_helpers import carol as carol  # a fixture
from tests.security_helpers import world as world  # a fixture

pytestmark = pytest.mark.django_db


# --- CSRF on every form -------------------------------------------------------------------


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = 0
    for path in sorted((BASE_DIR / "templates").rglob("*.html")):
        for form in re.findall(r"<form\b.*?</form>", path.read_text(), re.S | re.I):
            if re.search(r"""method=["']?post""", form, re.I):
                forms += 1
                assert "{% csrf_token %}" in form, (path, form[:120])
    assert forms >= 3  # login, signup, logout


def post_forms(response) -> list[dict[str, Any]]:
    """Each <form method=post> of a page: its action and its hidden fields."""
    forms = []
    for form in re.findall(r"<form\b.*?</form>", response.content.decode(), re.S | re.I):
        page = Page(form)
        attrs = page.find("form")[0]
        if (attrs.get("method") or "get").lower() != "post":
            continue
        hidden = {
            field["name"]: field.get("value") or ""
            for field in page.find("input")
            if field.get("type") == "hidden" and field.get("name")
        }
        forms.append({"action": attrs.get("action") or response.request["PATH_INFO"], **hidden})
    return forms


@pytest.mark.parametrize(
    "path, member",
    [
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
        ("/", True),
        ("/rooms/general/", True),
        ("/dm/bob/", True),
    ],
)
@pytest.mark.redis
def test_every_post_form_on_the_site_needs_its_csrf_token(alice, bob, general, path, member):
    client = Client(enforce_csrf_checks=True)
    if member:
        client.force_login(alice)
    # The page sets the CSRF cookie: only the token in the form is missing below.
    response = client.get(path, follow=True)
    assert response.status_code == 200
    forms = post_forms(response)
    assert forms, "every page has a POST form: login, signup or the logout button"
    for form in forms:
        token = form.pop("csrfmiddlewaretoken", "")
        assert token, (path, form)
        action = form.pop("action")
        data = {"username": "mallory", "password": "x", "password1": "x", "password2": "x"}
        refused = client.post(action, {**data, **form})
        assert refused.status_code == 403, action
        assert Page(refused.content).inline_code() == []
        # The same POST with the form's token gets past the check.
        accepted = client.post(action, {**data, **form, "csrfmiddlewaretoken": token})
        assert accepted.status_code in {200, 302}, action
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_admin_changes_need_the_csrf_token(world):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client(enforce_csrf_checks=True)
    login = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert login.status_code == 403
    client.force_login(root)
    private = world["private"]
    data = {"name": "Renamed", "slug": private.slug, "kind": "private", "description": ""}
    assert client.post(f"/admin/chat/room/{private.pk}/change/", data).status_code == 403
    action = {"action": "archive", "_selected_action": [private.pk]}
    assert client.post("/admin/chat/room/", action).status_code == 403
    private.refresh_from_db()
    assert (private.name, private.archived) == (PRIVATE_NAME, False)


# --- tokens ----------------------------------------------------------------------------------


def forged_tokens(alice, bob) -> dict[str, str]:
    """Tokens naming bob made from alice's, or signed without the site's key and salt."""
    genuine = token_issue(user=alice)
    payload, stamp, signature = genuine.rsplit(":", 2)
    bob_payload = {"u": bob.pk, "p": bob.get_session_auth_hash()[:16]}
    bobs = signing.dumps(bob_payload, salt=SALT).split(":")[0]
    later = signing.b62_encode(signing.b62_decode(stamp) + 10 * django_settings.CHAT_TOKEN_TTL)
    return {
        # alice's signature on bob's payload.
        "payload swapped": f"{bobs}:{stamp}:{signature}",
        # The same key under another salt: a value signed for some other purpose.
        "another salt": signing.dumps(bob_payload, salt="django.contrib.sessions"),
        "no salt": signing.dumps(bob_payload),
        "another key": signing.dumps(bob_payload, salt=SALT, key="not-the-site-secret-" * 3),
        # alice's own token, its lifetime stretched by a later timestamp.
        "timestamp moved": f"{payload}:{later}:{signature}",
        "unsigned": signing.b64_encode(f'{{"u":{bob.pk}}}'.encode()).decode(),
    }


def test_a_token_cannot_be_altered_to_name_another_user(alice, bob, general):
    for label, token in forged_tokens(alice, bob).items():
        response = Client().get("/api/rooms/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, label
        assert response.json()["error"] == "unauthenticated"


@pytest.mark.django_db(transaction=True)
async def test_a_socket_token_cannot_be_altered_to_name_another_user(connect, alice, bob, general):
    forged = await sync_to_async(forged_tokens)(alice, bob)
    for label, token in forged.items():
        sock, _ = await connect(None, token=token, expect_welcome=False)
        assert await first_output_is_close(sock) == 4401, label


# --- manage.py check --deploy ------------------------------------------------------------------


def documented_environment() -> dict[str, str]:
    """.env.example's variables, with a real secret where it says to put one."""
    variables = {}
    for line in (BASE_DIR / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip()
    assert variables["DJANGO_SECRET_KEY"].startswith("change-me")
    variables["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    return variables


@pytest.mark.processes
def test_check_deploy_is_clean_under_the_documented_environment():
    # test_settings.py runs the check with the HTTPS variables alone; this one runs
    # it with .env.example as shipped, so that the documented file cannot drift into
    # a configuration the check refuses (debug on, a short HSTS, plain cookies...).
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "CHAT_")) and name not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(documented_environment())
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
