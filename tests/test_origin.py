"""The socket's Origin rule: Django's CSRF origin check, scheme, host and port alike."""

from __future__ import annotations

from typing import Any

import pytest

from chat.web.middleware import origin_allowed


def scope(host: str | None, *, scheme: str = "ws", **headers: str) -> dict[str, Any]:
    pairs = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    if host is not None:
        pairs.append((b"host", host.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


@pytest.fixture(autouse=True)
def _site(settings) -> None:
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "chat.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None


@pytest.mark.parametrize(
    "origin, host, allowed",
    [
        ("http://localhost:8000", "localhost:8000", True),
        ("http://LOCALHOST:8000", "localhost:8000", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://chat.example.com", "chat.example.com", True),
        # Another port of the same host is another origin: another site.
        ("http://localhost:9999", "localhost:8000", False),
        ("http://127.0.0.1:9999", "127.0.0.1:8000", False),
        ("http://localhost", "localhost:8000", False),
        # Another scheme: an https page is not the plain-HTTP site, nor the reverse.
        ("https://localhost:8000", "localhost:8000", False),
        ("https://localhost", "localhost", False),
        # Another allowed host name is another origin too.
        ("http://127.0.0.1:8000", "localhost:8000", False),
        # A host the site does not serve, named in both headers by an attacker.
        ("http://evil.example", "evil.example", False),
        ("http://localhost.evil.example:8000", "localhost:8000", False),
        ("null", "localhost:8000", False),
        ("http://localhost:8000", None, False),
    ],
)
def test_only_the_sites_own_origin_passes(origin, host, allowed):
    assert origin_allowed(origin, scope(host)) is allowed


def test_over_tls_the_origin_is_https(settings):
    assert origin_allowed("https://chat.example.com", scope("chat.example.com", scheme="wss"))
    assert not origin_allowed("http://chat.example.com", scope("chat.example.com", scheme="wss"))


def test_behind_a_tls_proxy_the_proxys_word_counts_only_when_configured(settings):
    proxied = scope("chat.example.com", x_forwarded_proto="https")
    assert not origin_allowed("https://chat.example.com", proxied)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed("https://chat.example.com", proxied)
    assert not origin_allowed("http://chat.example.com", proxied)
    assert not origin_allowed("https://chat.example.com", scope("chat.example.com"))


def test_trusted_origins_pass_exactly_or_by_subdomain(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.org", "https://*.example.net"]
    elsewhere = scope("chat.example.com")
    assert origin_allowed("https://app.example.org", elsewhere)
    assert origin_allowed("https://eu.example.net", elsewhere)
    assert not origin_allowed("http://app.example.org", elsewhere)
    assert not origin_allowed("https://app.example.org:8443", elsewhere)
    assert not origin_allowed("http://eu.example.net", elsewhere)
    assert not origin_allowed("https://example.net.evil.example", elsewhere)
