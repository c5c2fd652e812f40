"""The room socket when something fails (docs/reliability.md): a bug in a handler, the
database down, Redis restarted, and a socket left idle.

On the whole ASGI stack, as tests/consumer_helpers.py tells.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings as django_settings
from django.db import OperationalError

from chat import protocol
from chat.actions import plain
from chat.domain import presence, snapshots, writes
from chat.protocol import CloseCode
from chat.sockets import room as room_socket
from chat.web import middleware
from tests.consumer_helpers import ORIGIN, send_body, stored, sync
from tests.helpers import session_cookie
from tests.servers import PrivateRedis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.redis
async def test_a_failing_handler_closes_the_socket_4011_and_cleans_up(
    connect, alice, bob, general, monkeypatch, caplog
):
    """An unexpected error ends the socket with 4011 (reconnect), never leaving it in the room.

    1011, the standard code for it, is one daphne refuses to send.
    """
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    async def broken(self, frame):
        raise RuntimeError("unexpected")

    monkeypatch.setitem(room_socket.RoomConsumer.handlers, protocol.Ping, broken)
    caplog.clear()
    await a.send({"type": "ping"})
    assert await a.closed_with() == CloseCode.INTERNAL_ERROR == 4011
    await a.close()  # the server's disconnect, as daphne sends it after the close
    # One ERROR, with the traceback of what failed.
    [record] = errors_logged(caplog)
    assert record.exc_info is not None and "RuntimeError: unexpected" in record.exc_text
    layer = get_channel_layer()
    members = await layer.connection(0).zrange(layer._group_key(general.group_name), 0, -1)
    assert len(members) == 1  # bob's socket alone
    assert (await send_body(b, "still here"))["id"] == 1


async def test_a_failure_while_connecting_is_accepted_and_closed_4011(
    connect, alice, general, monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("unexpected at the welcome")

    monkeypatch.setattr(room_socket, "socket_snapshot", broken)
    a, _ = await connect(alice, expect_welcome=False)
    # Accepted first: a refused handshake would not tell the client why.
    assert await a.closed_with() == CloseCode.INTERNAL_ERROR
    [record] = errors_logged(caplog)
    assert "RuntimeError: unexpected at the welcome" in record.exc_text


@pytest.mark.redis
async def test_a_failure_in_the_disconnect_ends_the_consumer_quietly(
    connect, alice, general, monkeypatch, caplog
):
    a, _ = await connect(alice)

    async def broken(*args, **kwargs):
        raise RuntimeError("unexpected at the leave")

    monkeypatch.setattr(presence, "presence_leave", broken)
    caplog.clear()
    # The application ends without raising (daphne would log it as a crash).
    await a.close()
    assert a.communicator.future.done() and a.communicator.future.exception() is None
    [record] = errors_logged(caplog)
    assert "RuntimeError: unexpected at the leave" in record.exc_text


def unavailable(*args: Any, **kwargs: Any) -> Any:
    """Stands in for a database call while the database is down."""
    raise OperationalError("the database is down")


async def unavailable_async(*args: Any, **kwargs: Any) -> Any:
    """Stands in for chat.actions.plain's round trip while the database is down."""
    raise OperationalError("the database is down")


def database_down(patch: pytest.MonkeyPatch) -> None:
    """Both ways a socket stores a message fail, as with the database down."""
    patch.setattr(writes, "message_create", unavailable)
    patch.setattr(plain, "plain_store", unavailable_async)


async def test_database_down_at_authentication_is_4013(connect, alice, general, monkeypatch):
    monkeypatch.setattr(middleware, "token_check", unavailable)
    sock, _ = await connect(alice, expect_welcome=False)
    assert await sock.closed_with() == 4013
    cookie = await session_cookie(alice)
    monkeypatch.setattr(middleware, "get_user", database_sync_to_async(unavailable))
    sock, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await sock.closed_with() == 4013


async def test_database_down_at_connect_is_4013(connect, alice, general, monkeypatch):
    monkeypatch.setattr(snapshots, "room_snapshot", unavailable)
    sock, _ = await connect(alice, expect_welcome=False)
    assert await sock.closed_with() == 4013


@pytest.mark.redis
async def test_database_down_at_send_is_unavailable(connect, alice, bob, general, monkeypatch):
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    with monkeypatch.context() as patch:
        database_down(patch)
        await a.send({"type": "message.send", "body": "lost?", "client_id": "retry-me"})
        error = await a.receive_type("error")
        assert (error["code"], error["client_id"]) == ("unavailable", "retry-me")
    assert await b.nothing()
    # The client resends: stored once, now.
    ack = await send_body(a, "lost?", "retry-me")
    assert (ack["id"], ack["client_id"]) == (1, "retry-me")
    assert (await b.receive_type("message"))["id"] == 1


@pytest.mark.redis
async def test_an_outage_is_one_warning_when_it_starts_and_one_when_it_ends(
    connect, alice, general, monkeypatch, caplog
):
    """An outage answered by design is no error: no traceback per refused frame."""
    a, _ = await connect(alice)
    caplog.clear()
    with monkeypatch.context() as patch:
        database_down(patch)
        for n in range(3):
            await a.send({"type": "message.send", "body": "x", "client_id": f"o{n}"})
            assert (await a.receive_type("error"))["code"] == "unavailable"
    assert (await send_body(a, "back", "o0"))["id"] == 1
    records = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "chat.platform.outages"
    ]
    assert [level for level, _ in records] == ["WARNING", "WARNING"]
    assert records[0][1].startswith("database unavailable")
    assert "database back after" in records[1][1] and "3 answers" in records[1][1]
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]


# --- the idle socket ---------------------------------------------------------


@pytest.mark.redis
async def test_an_idle_socket_still_receives(connect, alice, bob, general):
    """redis-py 8's default 5 s socket timeout would kill idle sockets (chatsite/settings.py)."""
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await asyncio.sleep(30)
    assert (await send_body(b, "still there?"))["id"] == 1
    message = await a.receive_type("message")
    assert (message["id"], message["body"]) == (1, "still there?")
    await sync(a)


# --- Redis restarts ------------------------------------------------------------


@pytest.fixture
def private_redis(settings: Any, tmp_path: Path) -> Iterator[PrivateRedis]:
    """The channel layer on a redis-server of its own (never the shared one).

    Request it before `connect`, so that the sockets are closed before it stops.
    """
    server = PrivateRedis(tmp_path)
    server.start()
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = server.url
    # Assigning CHANNEL_LAYERS sends setting_changed, which empties the
    # layer cache; clear it anyway so that no test ever reaches the shared server.
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    settings.CHAT_LAYER_CHECK_INTERVAL = 0.2
    settings.CHAT_LAYER_TIMEOUT = 2.0
    try:
        yield server
    finally:
        server.stop()
        channel_layers.backends.clear()


@pytest.mark.redis
async def test_redis_restart_closes_sockets_with_4012(private_redis, connect, alice, bob, general):
    assert get_channel_layer().hosts[0]["address"] == private_redis.url
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await send_body(a, "before")
    await b.receive_type("message")

    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    started = time.monotonic()
    assert await a.closed_with(timeout=5) == 4012
    assert await b.closed_with(timeout=5) == 4012
    assert time.monotonic() - started < 5

    # Redis is back: a new socket works, and resuming recovers what was missed.
    a2, welcome = await connect(alice, after=0)
    assert welcome["last_id"] == 1
    assert (await a2.receive_type("message"))["body"] == "before"
    b2, _ = await connect(bob)
    ack = await send_body(b2, "after", "c-after")
    assert (ack["id"], ack["client_id"]) == (2, "c-after")
    assert (await a2.receive_type("message"))["id"] == 2
    assert await stored("general") == [
        (1, "before", "alice", None, False),
        (2, "after", "bob", "c-after", False),
    ]
    # Stays open and live afterwards (no stale close from the restart).
    await asyncio.sleep(1)
    await sync(a2)
    assert (await send_body(a2, "later"))["id"] == 3
    assert (await b2.receive_type("message"))["id"] == 3


@pytest.mark.redis
async def test_socket_opened_while_redis_is_down_is_closed_4013(
    private_redis, connect, alice, general
):
    await asyncio.to_thread(private_redis.stop)
    sock, welcome = await connect(alice, expect_welcome=False)
    assert sock.communicator is not None
    assert await sock.closed_with(timeout=8) == 4013

    await asyncio.to_thread(private_redis.start)
    a, welcome = await connect(alice)
    assert welcome["last_id"] is None
    assert (await send_body(a, "back"))["id"] == 1
    await asyncio.sleep(1)
    await sync(a)


@pytest.mark.redis
async def test_a_socket_never_stays_deaf_after_a_quick_restart(
    private_redis, connect, alice, bob, general
):
    """Whichever notices first, the reader or the epoch watch, the socket is closed."""
    a, _ = await connect(alice)
    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    assert await a.closed_with(timeout=5) == 4012
    b, _ = await connect(bob)
    assert (await send_body(b, "hello again"))["id"] == 1


@pytest.mark.redis
async def test_new_socket_right_after_the_restart_is_not_closed(
    private_redis, connect, alice, bob, general
):
    """A socket that joined the restarted Redis is not deaf: the watch must not close it."""
    a, _ = await connect(alice)
    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    b, welcome = await connect(bob)
    assert welcome is not None
    assert await a.closed_with(timeout=5) == 4012
    await asyncio.sleep(1)  # several looks of the epoch watch
    await sync(b)
    assert (await send_body(b, "still open"))["id"] == 1


def set_epoch(server: PrivateRedis, value: str) -> None:
    """What a restart looks like to the epoch watch: another epoch key."""
    client = redis.Redis(port=server.port)
    client.set(f"{get_channel_layer().prefix}:epoch", value)
    client.close()


@pytest.mark.redis
async def test_the_watch_closes_the_sockets_before_an_epoch_change_only(
    private_redis, connect, alice, bob, general
):
    a, _ = await connect(alice)
    await asyncio.to_thread(set_epoch, private_redis, "another")
    # Joined after the change (before the watch's next look): not closed.
    b, _ = await connect(bob)
    assert await a.closed_with(timeout=3) == 4012
    await asyncio.sleep(1)
    await sync(b)
    assert (await send_body(b, "fine"))["id"] == 1


@pytest.mark.redis
async def test_a_restart_seen_while_connecting_closes_after_the_accept(
    private_redis, connect, alice, general, monkeypatch
):
    """Never a close before the accept (a refused handshake), never a deaf socket."""
    snapshot = snapshots.room_snapshot

    def slow_snapshot(**kwargs: Any) -> snapshots.Snapshot:
        set_epoch(private_redis, "restarted meanwhile")
        time.sleep(1)  # the watch looks every 0.2 s
        return snapshot(**kwargs)

    monkeypatch.setattr(snapshots, "room_snapshot", slow_snapshot)
    sock, _ = await connect(alice, expect_welcome=False)
    assert sock.communicator.response_headers is not None  # accepted
    assert await sock.closed_with(timeout=5) == 4012
