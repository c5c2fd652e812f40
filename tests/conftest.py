"""Fixtures: users, rooms, and sockets on the real ASGI stack and Redis layer."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from chat.actions import plain
from chat.models import Room
from chat.platform.layers import ChatChannelLayer
from chat.web.tokens import token_issue
from tests.settings import REDIS_URL

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def django_db_modify_db_settings() -> None:
    """A database of this run's own, so that runs never share one.

    On SQLite a file, as `make run` has, not Django's default in-memory test
    database: WAL, the busy timeout and IMMEDIATE transactions only mean
    something on a file that several connections (and processes) open.
    """
    suffix = f"{os.getpid()}"
    for alias in settings.DATABASES:
        test = settings.DATABASES[alias].setdefault("TEST", {})
        if settings.DATABASES[alias]["ENGINE"] == "django.db.backends.sqlite3":
            test["NAME"] = str(Path(tempfile.gettempdir()) / f"chatsite-test-{suffix}.sqlite3")
        else:
            test["NAME"] = f"test_{settings.DATABASES[alias]['NAME']}_{suffix}"


@pytest.fixture(autouse=True)
async def _flush_layer(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test leaves an empty channel layer (this run's prefix only), and no
    database connection of its event loop open.

    The layer is flushed after a test marked `redis` (which may have written
    this run's keys without it) and after any test that made the layer; a test
    that did neither touches no Redis here, so that it runs without one.

    And each test gets a layer object of its own: each test runs its own event
    loop, and channels-redis keeps receive state bound to the loop that last
    received (a consumer still receiving when an earlier test's loop closed
    would leave its lock to the next test).
    """
    yield
    layer = channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    if layer is None and request.node.get_closest_marker("redis"):
        layer = get_channel_layer()
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    if layer is not None:
        await layer.flush()
    # The loop's own database connection (chat.actions.plain) ends with the test's loop.
    await plain.connection_close()


@pytest.fixture
def make_user(db: None) -> Callable[..., AbstractBaseUser]:
    def make(username: str, **extra: Any) -> AbstractBaseUser:
        return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)

    return make


@pytest.fixture
def alice(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("bob")


@pytest.fixture
def general(db: None) -> Room:
    room, _ = Room.objects.get_or_create(
        slug="general", defaults={"name": "General", "kind": Room.Kind.PUBLIC}
    )
    return room


@pytest.fixture
def generous_rate_limit(settings: Any) -> None:
    """For tests that send many messages per user and are not about the limit."""
    settings.CHAT_RATE_LIMIT = (10_000, 10)


@pytest.fixture
def frames_without_presence(monkeypatch: pytest.MonkeyPatch) -> None:
    """`presence` frames come as users come and go; for tests about other frames."""
    monkeypatch.setattr(Socket, "ignore", frozenset({"presence"}))


class Socket:
    """A WebsocketCommunicator speaking JSON frames."""

    # Frame types that receive(), nothing() and closed_with() pass over. Empty
    # by default; a test module sets it (with monkeypatch) for frames that come
    # at their own pace and are not what it tests, such as `presence`.
    ignore: frozenset[str] = frozenset()

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        # An output that nothing() read to look past ignored frames.
        self.held: list[dict[str, Any]] = []

    async def send(self, frame: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def output(self, timeout: float) -> dict[str, Any]:
        """The next ASGI output that is not an ignored frame."""
        while True:
            if self.held:
                output = self.held.pop(0)
            else:
                output = await self.communicator.receive_output(timeout)
            if not self.ignored(output):
                return output

    def ignored(self, output: dict[str, Any]) -> bool:
        if not self.ignore or output["type"] != "websocket.send" or not output.get("text"):
            return False
        try:
            frame = json.loads(output["text"])
        except ValueError:
            return False
        return isinstance(frame, dict) and frame.get("type") in self.ignore

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        output = await self.output(timeout)
        assert output["type"] == "websocket.send", output
        frame = json.loads(output["text"])
        assert isinstance(frame, dict)
        return frame

    async def receive_type(self, kind: str, timeout: float = 3) -> dict[str, Any]:
        """The next frame, which must be of type `kind`."""
        frame = await self.receive(timeout)
        assert frame["type"] == kind, frame
        return frame

    async def nothing(self, timeout: float = 0.3) -> bool:
        """True if nothing (but ignored frames) arrives within `timeout` seconds."""
        if self.held:
            return False
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            if await self.communicator.receive_nothing(left):
                return True
            output = await self.communicator.receive_output()
            if not self.ignored(output):
                self.held.append(output)
                return False

    async def closed_with(self, timeout: float = 3) -> int:
        """Read frames until the close; its code."""
        while True:
            output = await self.output(timeout)
            if output["type"] == "websocket.close":
                code = output.get("code", 1000)
                # daphne (autobahn) refuses a close code of any type but int itself,
                # an IntEnum member included: the socket would get no code at all.
                assert type(code) is int, f"close code {code!r} is a {type(code).__name__}"
                return code

    async def close(self) -> None:
        await self.communicator.disconnect()


def with_host(headers: list[tuple[bytes, bytes]] | None) -> list[tuple[bytes, bytes]]:
    """The headers of a socket's request, with the Host a browser sends to the test
    site (http://localhost) unless they name one."""
    headers = list(headers or [])
    if not any(name == b"host" for name, _ in headers):
        headers.append((b"host", b"localhost"))
    return headers


def socket_path(slug: str, *, token: str | None = None, after: int | str | None = None) -> str:
    query = []
    if token is not None:
        query.append(f"token={token}")
    if after is not None:
        query.append(f"after={after}")
    return f"/ws/rooms/{slug}/" + ("?" + "&".join(query) if query else "")


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Any]]:
    """Open a socket as `user` (by token) to `slug`; expects the welcome unless told not to."""
    from chatsite.asgi import application

    opened: list[Socket] = []

    async def open_socket(
        user: AbstractBaseUser | None,
        slug: str = "general",
        *,
        after: int | str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        token: str | None = None,
        expect_welcome: bool = True,
    ) -> tuple[Socket, dict[str, Any] | None]:
        if user is not None and token is None:
            token = await sync_to_async(token_issue)(user=user)
        communicator = WebsocketCommunicator(
            application, socket_path(slug, token=token, after=after), headers=with_host(headers)
        )
        connected, _ = await communicator.connect(timeout=5)
        socket = Socket(communicator)
        opened.append(socket)
        if not connected:
            return socket, None
        welcome = await socket.receive_type("welcome") if expect_welcome else None
        return socket, welcome

    yield open_socket
    for socket in opened:
        if socket.communicator.future.cancelled():
            # A receive that timed out cancelled the application (asgiref does),
            # so the test has failed already; disconnecting would raise
            # CancelledError and skip the database flush, failing later tests.
            continue
        await socket.communicator.disconnect()


@pytest.fixture
async def make_layer() -> AsyncIterator[Callable[..., ChatChannelLayer]]:
    """Channel layers of their own on the real Redis, flushed and closed after the test."""
    layers: list[ChatChannelLayer] = []

    def make(*, capacity: int) -> ChatChannelLayer:
        layer = ChatChannelLayer(
            hosts=[{"address": REDIS_URL}],
            prefix=f"test-layer-{uuid.uuid4().hex[:8]}",
            capacity=capacity,
        )
        layers.append(layer)
        return layer

    yield make
    for layer in layers:
        await layer.flush()
        await layer.close_pools()
