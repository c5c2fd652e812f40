"""Who may open a room socket (docs/protocol-v1.md, The WebSocket): tokens, session
cookies, the Origin gate, private, direct and archived rooms.

On the whole ASGI stack, as tests/consumer_helpers.py tells.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing

from chat.domain import direct
from chat.models import Room
from chat.protocol import CloseCode
from chat.web.tokens import token_issue
from tests.conftest import Socket
from tests.consumer_helpers import ORIGIN, create, history, ids, room_last_number, send_body, stored
from tests.consumer_helpers import carol as carol
from tests.helpers import session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


async def test_anonymous_is_closed_4401(connect, general):
    sock, _ = await connect(None, expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.parametrize("token", ["garbage", "", "a:b:c"])
async def test_bad_token_is_closed_4401(connect, general, token):
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_tampered_token_is_closed_4401(connect, alice, bob, general):
    good = await sync_to_async(token_issue)(user=alice)
    _, stamp, signature = good.rsplit(":", 2)
    forged = signing.dumps({"u": bob.pk}, salt="chat.token").split(":")[0]
    sock, _ = await connect(None, token=f"{forged}:{stamp}:{signature}", expect_welcome=False)
    assert await sock.closed_with() == 4401


def token_issued_ago(user: AbstractBaseUser, seconds: int, monkeypatch: Any) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(
            signing.TimestampSigner,
            "timestamp",
            lambda self: signing.b62_encode(int(time.time()) - seconds),
        )
        return token_issue(user=user)


@pytest.mark.redis
async def test_expired_token_is_closed_4401(connect, alice, general, monkeypatch):
    ttl = django_settings.CHAT_TOKEN_TTL
    fresh = token_issued_ago(alice, ttl - 30, monkeypatch)
    _, welcome = await connect(None, token=fresh)
    assert welcome["user"] == {"username": "alice"}
    expired = token_issued_ago(alice, ttl + 5, monkeypatch)
    sock, _ = await connect(None, token=expired, expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_token_ttl_is_a_setting(connect, alice, general, settings, monkeypatch):
    token = token_issued_ago(alice, 20, monkeypatch)
    settings.CHAT_TOKEN_TTL = 10
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_token_of_a_deactivated_user_is_closed_4403(connect, alice, general):
    token = await sync_to_async(token_issue)(user=alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4403


async def test_token_after_a_password_change_is_closed_4401(connect, alice, general):
    token = await sync_to_async(token_issue)(user=alice)
    alice.set_password("another one entirely")
    await database_sync_to_async(alice.save)()
    sock, _ = await connect(None, token=token, expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.redis
async def test_session_cookie_with_an_allowed_origin(connect, alice, general):
    cookie = await session_cookie(alice)
    sock, welcome = await connect(None, headers=[ORIGIN, cookie])
    assert welcome["user"] == {"username": "alice"}
    assert (await send_body(sock, "via cookie"))["user"] == "alice"
    assert await stored("general") == [(1, "via cookie", "alice", None, False)]


async def test_session_cookie_without_origin_is_closed_4401(connect, alice, general):
    cookie = await session_cookie(alice)
    sock, _ = await connect(None, headers=[cookie], expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_session_of_a_deactivated_user_is_closed_4401(connect, alice, general):
    cookie = await session_cookie(alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    sock, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.parametrize(
    "value", [b"abcdefgh\x00ijk", b"x" * 5000, b"\xff\xfe12345678", b"", b"short"]
)
async def test_a_bogus_session_cookie_is_closed_4401(connect, general, value):
    name = django_settings.SESSION_COOKIE_NAME.encode()
    cookie = (b"cookie", name + b"=" + value)
    sock, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await sock.closed_with() == 4401


async def test_origin_without_a_session_is_closed_4401(connect, general):
    sock, _ = await connect(None, headers=[ORIGIN], expect_welcome=False)
    assert await sock.closed_with() == 4401


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"null", b"http://localhost.evil.example", b"ftp://localhost"],
)
async def test_foreign_origin_is_refused_at_the_handshake(connect, alice, general, origin):
    cookie = await session_cookie(alice)
    _, welcome = await connect(None, headers=[(b"origin", origin), cookie])
    assert welcome is None  # connect() answered (False, ...): HTTP 403
    token = await sync_to_async(token_issue)(user=alice)
    _, welcome = await connect(None, token=token, headers=[(b"origin", origin)])
    assert welcome is None  # a token does not pass a foreign page either


@pytest.mark.redis
async def test_token_with_an_allowed_origin(connect, alice, general):
    _, welcome = await connect(alice, headers=[ORIGIN])
    assert welcome["user"] == {"username": "alice"}


@pytest.mark.redis
async def test_private_room_is_for_members_only(connect, alice, bob, db):
    room = await database_sync_to_async(Room.objects.create)(
        slug="secret", name="Secret", kind=Room.Kind.PRIVATE
    )
    await database_sync_to_async(room.members.add)(alice)
    sock, _ = await connect(bob, "secret", expect_welcome=False)
    assert await sock.closed_with() == 4404
    a, welcome = await connect(alice, "secret")
    assert welcome["room"]["kind"] == "private"
    assert (await send_body(a, "members only"))["id"] == 1


@pytest.mark.redis
async def test_direct_room_is_for_its_two_members(connect, alice, bob, carol, db):
    room = await database_sync_to_async(direct.direct_room_open)(user=alice, username="bob")
    sock, _ = await connect(carol, room.slug, expect_welcome=False)
    assert await sock.closed_with() == 4404
    a, welcome = await connect(alice, room.slug)
    assert welcome["room"]["kind"] == "direct"
    b, _ = await connect(bob, room.slug)
    await send_body(a, "psst")
    assert (await b.receive_type("message"))["body"] == "psst"


@pytest.mark.parametrize("slug", ["nowhere", "General", "a" * 51, "%00"])
async def test_unknown_room_is_closed_4404(connect, alice, general, slug):
    sock, _ = await connect(alice, slug, expect_welcome=False)
    assert await sock.closed_with() == 4404


@pytest.mark.parametrize("path", ["/ws/rooms/general", "/ws/rooms//", "/ws/rooms/a/b/", "/ws/x/"])
async def test_a_path_that_names_no_room_is_closed_4404(alice, path):
    from chatsite.asgi import application

    token = await sync_to_async(token_issue)(user=alice)
    communicator = WebsocketCommunicator(application, f"{path}?token={token}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected  # accepted, so that the client can read the code
    assert await Socket(communicator).closed_with() == CloseCode.NOT_FOUND
    await communicator.disconnect()


@pytest.mark.redis
async def test_archived_room_is_read_only(connect, alice, bob, general):
    await create(general, bob, "before the archive")
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(archived=True)
    a, welcome = await connect(alice)
    b, _ = await connect(bob)
    assert welcome["room"]["archived"] is True
    assert welcome["last_id"] == 1
    assert ids(await history(a)) == [1]
    await a.send({"type": "message.send", "body": "too late", "client_id": "late"})
    error = await a.receive_type("error")
    assert (error["code"], error["client_id"]) == ("room_archived", "late")
    await b.send({"type": "message.edit", "id": 1, "body": "edit"})
    assert (await b.receive_type("error"))["code"] == "room_archived"
    await b.send({"type": "message.delete", "id": 1})
    assert (await b.receive_type("error"))["code"] == "room_archived"
    assert await a.nothing() and await b.nothing()
    assert await stored("general") == [(1, "before the archive", "bob", None, False)]
    assert await room_last_number("general") == 1


@pytest.mark.redis
async def test_room_archived_while_connected(connect, alice, general):
    a, _ = await connect(alice)
    await send_body(a, "one")
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(archived=True)
    await a.send({"type": "message.send", "body": "two"})
    assert (await a.receive_type("error"))["code"] == "room_archived"
    assert await stored("general") == [(1, "one", "alice", None, False)]
