"""Cross-site WebSocket hijacking against a real daphne worker (docs/protocol-v1.md, The WebSocket).

A page on another site can make the browser open a socket to this one with the
user's cookie attached; only the Origin header tells it apart. The worker runs
with ALLOWED_HOSTS "localhost,127.0.0.1" (conftest.base_env).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.conftest import PASSWORD

pytestmark = pytest.mark.integration

USER = "user17"


def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def log_in(port: int) -> str:
    """Log in through the login form, as a browser does; the Cookie header of the session."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/accounts/login/")
        response = connection.getresponse()
        page = response.read().decode()
        assert response.status == 200
        csrf_cookie = cookies_of(response)["csrftoken"]
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match is not None
        form = {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": match[1]}
        connection.request(
            "POST",
            "/accounts/login/",
            body=urlencode(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf_cookie}",
            },
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 302, response.status
        cookie = f"sessionid={cookies_of(response)['sessionid']}"
        # The cookie really is a session: the lobby opens with it.
        connection.request("GET", "/", headers={"Cookie": cookie})
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        return cookie
    finally:
        connection.close()


async def outcome(url: str, headers: dict[str, str]) -> str | int:
    """How a socket opening ends: the HTTP status of a refused handshake, the close
    code of a refusal after it, or "welcome <username>"."""
    try:
        connection = await websockets.connect(url, additional_headers=headers, open_timeout=10)
    except InvalidStatus as error:
        return error.response.status_code
    try:
        frame = json.loads(await asyncio.wait_for(connection.recv(), 10))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else 1006
    finally:
        await connection.close()
    assert frame["type"] == "welcome", frame
    return f"welcome {frame['user']['username']}"


async def test_a_foreign_page_cannot_use_the_session_cookie(cluster_factory):
    worker = cluster_factory(1).workers[0]
    cookie = await asyncio.to_thread(log_in, worker.port)
    url = f"ws://127.0.0.1:{worker.port}/ws/rooms/general/"
    own = f"http://127.0.0.1:{worker.port}"

    # The hijack: a page on evil.example opens the socket; the browser adds the cookie.
    assert await outcome(url, {"Cookie": cookie, "Origin": "https://evil.example"}) == 403
    # The site's own page, same cookie: the user's socket.
    assert await outcome(url, {"Cookie": cookie, "Origin": own}) == f"welcome {USER}"
    # No Origin is not a browser: a cookie alone never authenticates.
    assert await outcome(url, {"Cookie": cookie}) == 4401
    # Sandboxed frames and file: pages send "null".
    assert await outcome(url, {"Cookie": cookie, "Origin": "null"}) == 403


async def test_origins_that_only_look_like_the_site_are_refused(cluster_factory):
    cluster = cluster_factory(1)
    worker = cluster.workers[0]
    cookie = await asyncio.to_thread(log_in, worker.port)
    url = f"ws://127.0.0.1:{worker.port}/ws/rooms/general/"
    port = worker.port
    welcome = f"welcome {USER}"
    expected: dict[str, str | int] = {
        # The host is 127.0.0.1.evil.example, a name evil.example controls.
        "http://127.0.0.1.evil.example": 403,
        f"http://127.0.0.1.evil.example:{port}": 403,
        # A fragment is no part of the host: the host is evil.example.
        "http://evil.example#127.0.0.1": 403,
        # Everything before "@" is user information: the host is evil.example.
        "http://127.0.0.1@evil.example": 403,
        f"http://127.0.0.1:{port}@evil.example": 403,
        # A trailing dot makes another origin for the browser (and for cookies).
        f"http://localhost.:{port}": 403,
        f"http://127.0.0.1.:{port}": 403,
        # Not a web page's scheme.
        f"ws://127.0.0.1:{port}": 403,
        f"file://127.0.0.1:{port}": 403,
        # Host names are case-insensitive (RFC 6454 compares them lowercased).
        f"HTTP://127.0.0.1:{port}": welcome,
        # The site's origin is the scheme, host and port the socket was opened on
        # (Django's CSRF rule): another port, scheme or allowed host name is
        # another site, whose pages may not use the cookie.
        "http://127.0.0.1:9999": 403,
        "http://127.0.0.1": 403,
        f"https://127.0.0.1:{port}": 403,
        "https://localhost": 403,
        f"http://localhost:{port}": 403,
        f"http://LOCALHOST:{port}": 403,
        f"http://127.0.0.1:{port}": welcome,
    }
    seen = {origin: await outcome(url, {"Cookie": cookie, "Origin": origin}) for origin in expected}
    assert seen == expected
    # Opened on localhost, the socket's own origin is localhost's.
    on_localhost = f"ws://localhost:{port}/ws/rooms/general/"
    local = f"http://localhost:{port}"
    assert await outcome(on_localhost, {"Cookie": cookie, "Origin": local}) == welcome
    assert (
        await outcome(on_localhost, {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}) == 403
    )
    # A token does not let a foreign page in either; without an Origin it is a client's.
    token = await asyncio.to_thread(cluster.token, USER)
    with_token = f"{url}?token={token}"
    assert await outcome(with_token, {"Origin": "https://evil.example"}) == 403
    assert await outcome(with_token, {}) == welcome
