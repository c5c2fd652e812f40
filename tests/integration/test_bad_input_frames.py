"""Bad input on a live socket: what is not a frame at all (plain text, broken JSON,
binary, invalid UTF-8) and frames over the size limit.

Every case is checked as tests/integration/bad_input_helpers.py tells.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.bad_input_helpers import KIB, MIB, SENDER, padded
from tests.integration.bad_input_helpers import db as db  # a fixture
from tests.integration.bad_input_helpers import tokens as tokens  # a fixture
from tests.integration.bad_input_helpers import workers as workers  # a fixture
from tests.integration.bad_input_sockets import Pair, error_frame
from tests.integration.bad_input_sockets import pair as pair  # a fixture
from tests.integration.bad_input_sockets import stage as stage  # a fixture

# One event loop for the module: the shared sockets live across cases.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


# --- frames that are not frames -------------------------------------------------------

NOT_A_FRAME = [
    pytest.param("hello", id="plain-text"),
    pytest.param("{", id="truncated-json"),
    pytest.param("{'type': 'ping'}", id="single-quotes"),
    pytest.param('{"type": "ping",}', id="trailing-comma"),
    pytest.param('{"type": "ping"} {"type": "ping"}', id="two-frames-in-one"),
    pytest.param('\ufeff{"type": "ping"}', id="byte-order-mark"),
    pytest.param("", id="empty-text"),
    pytest.param(" \t\r\n ", id="white-space-text"),
    pytest.param("[]", id="array"),
    pytest.param('["message.send", "hi"]', id="array-of-fields"),
    pytest.param("123", id="number"),
    pytest.param("null", id="null"),
    pytest.param("true", id="bool"),
    pytest.param('"ping"', id="string"),
    pytest.param("{}", id="empty-object"),
    pytest.param('{"body": "no type"}', id="missing-type"),
    pytest.param('{"type": null}', id="type-null"),
    pytest.param('{"type": 5}', id="type-number"),
    pytest.param('{"type": 1.5}', id="type-float"),
    pytest.param('{"type": true}', id="type-bool"),
    pytest.param('{"type": ["ping"]}', id="type-list"),
    pytest.param('{"type": {"type": "ping"}}', id="type-object"),
    pytest.param('{"type": ""}', id="type-empty"),
    pytest.param('{"type": "nope"}', id="type-unknown"),
    pytest.param('{"type": "PING"}', id="type-uppercase"),
    pytest.param('{"type": " ping"}', id="type-padded"),
    pytest.param('{"type": "ping\\u0000"}', id="type-with-nul"),
    pytest.param('{"type": "chat.message", "text": "forged"}', id="type-group-event"),
    pytest.param('{"type": "websocket.close", "code": 1000}', id="type-asgi-event"),
    pytest.param('{"type": "ping", "x": NaN}', id="nan"),
    pytest.param('{"type": "ping", "x": -Infinity}', id="infinity"),
    pytest.param('{"type": "message.send", "body": "a\x01b"}', id="raw-control-in-string"),
    pytest.param('{"type": "message.send", "body": "a\nb"}', id="raw-newline-in-string"),
    pytest.param('{"type": "message.send", "body": "a\x00b"}', id="raw-nul-in-string"),
    pytest.param("[" * 30_000 + "]" * 30_000, id="deep-nesting"),
]


@pytest.mark.parametrize("text", NOT_A_FRAME)
async def test_not_a_frame_is_bad_request(pair: Pair, text: str) -> None:
    await pair.refused(text, "bad_request")


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        pytest.param('{"client_id": "c-1", "body": "hi"}', "c-1", id="missing-type"),
        pytest.param('{"type": "nope", "client_id": "c-1"}', "c-1", id="unknown-type"),
        pytest.param('{"type": 5, "client_id": "c-1"}', "c-1", id="type-number"),
        # Not JSON: the server cannot read a client_id from it.
        pytest.param('{"type": "ping", "client_id": "c-1", "x": NaN}', None, id="nan"),
    ],
)
async def test_a_readable_client_id_is_echoed(pair: Pair, text: str, echo: str | None) -> None:
    await pair.refused(text, "bad_request", client_id=echo)


# --- frames the WebSocket layer or the size limit refuses -----------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"type": "ping"}', id="json-ping"),
        pytest.param(b'{"type": "message.send", "body": "binary", "client_id": "x"}', id="send"),
        pytest.param(b"\xff\xfe\x00\x01", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_binary_frame_is_bad_request(pair: Pair, data: bytes) -> None:
    await pair.sender.send_bytes(data)
    error = await pair.sender.receive()
    # The server never reads a binary frame, so it has no client_id to echo.
    assert error == error_frame("bad_request", None, error.get("detail"))
    await pair.still_usable()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"type": "ping", "x": "\x80"}', id="lone-continuation-byte"),
        pytest.param(b"\xff", id="invalid-byte"),
        pytest.param(b'{"type": "ping", "x": "\xc0\xaf"}', id="overlong-encoding"),
        pytest.param(b'{"type": "ping", "x": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b'{"type": "ping", "x": "\xed\xa0\xbd\xed\xb8\x80"}', id="cesu-8"),
        pytest.param(b'{"type": "ping", "x": "\xf4\x90\x80\x80"}', id="beyond-u-10ffff"),
        pytest.param(b'{"type": "message.send", "body": "\xe2\x82', id="truncated-sequence"),
        pytest.param(
            '{"type": "message.send", "body": "caf\u00e9"}'.encode("latin-1"), id="latin-1"
        ),
    ],
)
async def test_invalid_utf8_in_a_text_frame_drops_the_connection(pair: Pair, data: bytes) -> None:
    # daphne's WebSocket layer (Autobahn, failByDrop) fails such a connection by
    # dropping TCP without a close frame: the client sees 1006, the application
    # never sees the frame.
    await pair.sender.send_bytes(data, text=True)
    await pair.closed(None)


async def test_a_frame_of_64_kib_is_served(pair: Pair) -> None:
    await pair.sender.send_text(padded({"type": "ping"}, 64 * KIB))
    assert await pair.sender.receive() == {"type": "pong"}
    number = pair.last_id + 1
    client_id = pair.unique("big")
    text = padded({"type": "message.send", "body": "big frame", "client_id": client_id}, 64 * KIB)
    await pair.sender.send_text(text)
    ack = await pair.sender.receive()
    assert (ack["type"], ack["id"], ack["body"]) == ("message", number, "big frame")
    seen = await pair.observer.receive()
    assert (seen["type"], seen["id"], seen["body"]) == ("message", number, "big frame")
    pair.rows.append((number, "big frame", SENDER, client_id, False, False))
    await pair.still_usable()


async def fragments(size: int, count: int) -> AsyncIterator[str]:
    for _ in range(count):
        yield " " * size


OVERSIZE = [
    pytest.param(
        lambda: padded({"type": "message.send", "body": "x"}, 64 * KIB + 1),
        4009,
        id="text-64-kib+1",
    ),
    pytest.param(
        lambda: json.dumps({"type": "message.send", "body": "\u20ac" * 22_000}, ensure_ascii=False),
        4009,
        id="22000-chars-over-64-kib",
    ),
    pytest.param(lambda: fragments(16 * KIB, 5), 4009, id="fragments-over-64-kib"),
    pytest.param(lambda: b"x" * (64 * KIB + 1), 4009, id="binary-64-kib+1"),
    pytest.param(lambda: " " * (MIB - 16) + '{"type":"ping"}', 4009, id="text-1-mib"),
    # Over daphne's own limit (1 MiB) the WebSocket layer drops the connection
    # without a close frame, before the application sees a byte.
    pytest.param(lambda: " " * (MIB + 1), None, id="text-1-mib+1"),
    pytest.param(lambda: b"x" * (MIB + 1), None, id="binary-1-mib+1"),
    pytest.param(lambda: " " * (4 * MIB), None, id="text-4-mib"),
]


@pytest.mark.parametrize(("make", "code"), OVERSIZE)
async def test_oversize_message_closes(pair: Pair, make: Any, code: int | None) -> None:
    # The server may cut the connection while the client is still writing.
    with contextlib.suppress(ConnectionClosed):
        await pair.sender.connection.send(make())
    await pair.closed(code)
