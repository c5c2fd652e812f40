"""Bad input on the room socket: every bad frame gets an `error` and changes nothing.

Each refusal is checked the same way: the `error` frame (code, detail, and the
frame's client_id whenever it is a string the server may emit, valid or not),
then a valid message on the same socket, acknowledged as id 1 (the socket
stays usable, nothing was stored),
which must also be the very next frame of another user's socket (the bad frame
reached nobody else), and finally the database holds that one message only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from tests.conftest import Socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
    pytest.mark.redis,
]

NO_CLIENT_ID = object()


@database_sync_to_async
def stored() -> list[tuple[int, str, str, str | None]]:
    return list(
        Message.objects.order_by("room_id", "number").values_list(
            "number", "body", "author__username", "client_id"
        )
    )


@pytest.fixture
async def pair(connect, alice, bob, general) -> tuple[Socket, Socket]:
    """alice's socket, which sends the bad frames, and bob's, which must see none."""
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    return a, b


async def still_usable(a: Socket, b: Socket) -> None:
    """The socket works on, nothing reached the other socket, nothing was stored."""
    await a.send({"type": "message.send", "body": "valid", "client_id": "valid-1"})
    ack = await a.receive_type("message")
    assert (ack["id"], ack["body"], ack["client_id"]) == (1, "valid", "valid-1")
    seen = await b.receive()
    assert (seen["type"], seen["id"], seen["client_id"]) == ("message", 1, None)
    assert await a.nothing(0.1) and await b.nothing(0.1)
    assert await stored() == [(1, "valid", "alice", "valid-1")]


async def refused(
    a: Socket, b: Socket, text: str, code: str, client_id: object = NO_CLIENT_ID
) -> dict[str, Any]:
    await a.send_text(text)
    error = await a.receive_type("error")
    assert error["code"] == code, error
    assert isinstance(error["detail"], str) and error["detail"]
    if client_id is NO_CLIENT_ID:
        assert "client_id" not in error, error
    else:
        assert error["client_id"] == client_id
    await still_usable(a, b)
    return error


def send_frame(**fields: Any) -> str:
    return json.dumps({"type": "message.send", **fields})


# --- not a frame -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{",
        "{'type': 'ping'}",
        "[]",
        '["message.send", "hi"]',
        "123",
        "null",
        "true",
        '"str"',
        '"{\\"type\\":\\"ping\\"}"',
        "{}",
        '{"type": null}',
        '{"type": 5}',
        '{"type": ["ping"]}',
        '{"type": {"type": "ping"}}',
        '{"type": "nope"}',
        '{"type": "PING"}',
        '{"type": " ping"}',
        '{"type": ""}',
        '{"body": "no type at all"}',
    ],
)
async def test_not_a_frame(pair, text):
    await refused(*pair, text, "bad_request")


async def test_an_empty_text_frame(pair):
    a, b = pair
    await a.communicator.send_input({"type": "websocket.receive", "text": ""})
    assert (await a.receive_type("error"))["code"] == "bad_request"
    await still_usable(a, b)


async def test_a_frame_without_type_echoes_a_valid_client_id(pair):
    await refused(*pair, '{"client_id": "c-x", "body": "hi"}', "bad_request", "c-x")


@pytest.mark.parametrize(
    "kind",
    [
        "chat.message",
        "chat_message",
        "chat.message_edited",
        "chat.message_deleted",
        "chat.typing",
        "chat.layer_lost",
        "websocket.disconnect",
        "websocket.receive",
        "websocket.connect",
        "websocket.close",
        "websocket.send",
        "websocket_disconnect",
        "layer_restarted",
        "receive_message_send",
        "message_send",
        "send",
        "close",
        "connect",
        "disconnect",
        "dispatch",
        "_private",
        "__class__",
    ],
)
async def test_a_group_event_or_handler_name_is_not_a_frame_type(pair, kind):
    a, b = pair
    # Shaped like the real event: were it dispatched, b would get this text.
    fake = json.dumps({"type": "message", "id": 1, "body": "forged", "user": "bob"})
    frame = {
        "type": kind,
        "id": 1,
        "author_id": 1,
        "text": fake,
        "author_text": fake,
        "user_id": 0,
        "code": 1000,
        "client_id": "forge-1",
    }
    await refused(a, b, json.dumps(frame), "bad_request", "forge-1")


async def test_deeply_nested_json(pair):
    # As deep as fits below 64 KiB: far beyond any recursion limit.
    await refused(*pair, "[" * 32_000 + "]" * 32_000, "bad_request")
    text = '{"a":' * 10_000 + "1" + "}" * 10_000
    assert len(text) < 64 * 1024
    a, _ = pair
    await a.send_text(text)
    assert (await a.receive_type("error"))["code"] == "bad_request"
    await a.send({"type": "ping"})
    assert await a.receive() == {"type": "pong"}


async def test_100000_nested_brackets_are_over_the_size_limit(pair):
    """100,000 brackets are 100,000 bytes: the 64 KiB rule answers first (4009)."""
    a, b = pair
    await a.send_text("[" * 100_000 + "]" * 100_000)
    assert await a.closed_with() == 4009
    assert await b.nothing()
    assert await stored() == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    "template",
    [
        '{"type": "message.send", "body": "hi", "extra": %s}',
        '{"type": "history", "limit": %s}',
        '{"type": "read", "id": %s}',
        "%s",
        "[%s]",
    ],
)
async def test_non_json_constants(pair, literal, template):
    await refused(*pair, template % literal, "bad_request")


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "history", "limit": 1e400}',
        '{"type": "read", "id": -1e400}',
        '{"type": "history", "limit": ' + "9" * 5000 + "}",
    ],
)
async def test_numbers_beyond_doubles_and_digit_limits(pair, text):
    await refused(*pair, text, "bad_request")


# --- message.send fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    "escaped_body",
    ["a\\ud800b", "\\ud800", "\\udfff", "a\\udc00\\ud800b", "\\ude00\\ud83d"],
)
async def test_lone_surrogates_in_body(pair, escaped_body):
    text = '{"type": "message.send", "body": "' + escaped_body + '", "client_id": "s-1"}'
    await refused(*pair, text, "bad_request", "s-1")


async def test_nul_in_body(pair):
    text = '{"type": "message.send", "body": "a\\u0000b", "client_id": "n-1"}'
    await refused(*pair, text, "bad_request", "n-1")


async def test_raw_nul_in_body(pair):
    await refused(*pair, send_frame(body="a\x00b", client_id="n-2"), "bad_request", "n-2")


@pytest.mark.parametrize("client_id", ["a\\u0000b", "\\ud800", "x\\udfff"])
async def test_nul_or_surrogate_in_client_id_is_not_echoed(pair, client_id):
    text = '{"type": "message.send", "body": "hi", "client_id": "' + client_id + '"}'
    await refused(*pair, text, "bad_request")


@pytest.mark.parametrize("body", [5, 0, 1.5, None, ["hi"], {"text": "hi"}, True, False])
async def test_body_of_a_wrong_type(pair, body):
    await refused(*pair, send_frame(body=body, client_id="t-1"), "bad_request", "t-1")


async def test_body_missing(pair):
    await refused(*pair, send_frame(client_id="m-1"), "bad_request", "m-1")


@pytest.mark.parametrize("body", ["", " ", "\n\t \r", "\u3000\u00a0\u2003\u2028\u2029\u200a"])
async def test_empty_body(pair, body):
    await refused(*pair, send_frame(body=body, client_id="e-1"), "empty", "e-1")


@pytest.mark.parametrize("body", ["a" * 4001, "\U0001f600" * 4001, " " + "é" * 4001 + " "])
async def test_body_too_long(pair, body):
    await refused(*pair, send_frame(body=body, client_id="l-1"), "too_long", "l-1")


@pytest.mark.parametrize(
    ("body", "stored_body"),
    [
        ("a" * 4000, "a" * 4000),
        ("\U0001f600" * 4000, "\U0001f600" * 4000),  # one code point each
        ("\u3000 " + "b" * 4000 + " \n", "b" * 4000),  # counted once stripped
        ("e\u0301" * 2000, "e\u0301" * 2000),  # combining marks are code points
    ],
)
async def test_body_at_the_limit_is_stored(pair, body, stored_body):
    a, b = pair
    await a.send({"type": "message.send", "body": body, "client_id": "ok"})
    ack = await a.receive_type("message")
    assert ack["body"] == stored_body
    assert (await b.receive_type("message"))["body"] == stored_body
    assert await stored() == [(1, stored_body, "alice", "ok")]


async def test_a_surrogate_pair_escape_is_one_character(pair):
    a, _ = pair
    await a.send_text('{"type": "message.send", "body": "\\ud83d\\ude00"}')
    assert (await a.receive_type("message"))["body"] == "\U0001f600"
    assert await stored() == [(1, "\U0001f600", "alice", None)]


@pytest.mark.parametrize("client_id", ["x" * 65, "", " " * 65])
async def test_an_invalid_client_id_string_is_echoed_as_sent(pair, client_id):
    """The client matches the refusal to its pending message by what it sent."""
    await refused(*pair, send_frame(body="hi", client_id=client_id), "bad_request", client_id)


@pytest.mark.parametrize("client_id", [5, 0, True, ["c"], {"c": 1}])
async def test_a_client_id_that_is_not_a_string_is_not_echoed(pair, client_id):
    await refused(*pair, send_frame(body="hi", client_id=client_id), "bad_request")


async def test_an_invalid_client_id_is_echoed_whatever_else_is_wrong(pair):
    await refused(*pair, send_frame(body="   ", client_id="x" * 65), "empty", "x" * 65)


async def test_client_id_at_the_limit(pair):
    a, b = pair
    client_id = "\U0001f600" * 64  # 64 characters
    await a.send({"type": "message.send", "body": "hi", "client_id": client_id})
    assert (await a.receive_type("message"))["client_id"] == client_id
    assert (await b.receive_type("message"))["client_id"] is None
    assert await stored() == [(1, "hi", "alice", client_id)]


async def test_unknown_fields_are_ignored(pair):
    a, _ = pair
    await a.send({"type": "ping", "extra": [1, 2]})
    assert await a.receive() == {"type": "pong"}
    await a.send({"type": "message.send", "body": "x", "user": "bob", "id": 99, "room": "x"})
    ack = await a.receive_type("message")
    assert (ack["id"], ack["user"], ack["room"]) == (1, "alice", "general")
    assert await stored() == [(1, "x", "alice", None)]


# --- other frame types with bad fields ----------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message.edit", "id": "1", "body": "x", "client_id": "k-1"},
        {"type": "message.delete", "client_id": "k-1"},
        {"type": "read", "id": [1], "client_id": "k-1"},
        {"type": "history", "limit": "x", "client_id": "k-1"},
    ],
)
async def test_errors_of_other_types_echo_the_client_id(pair, frame):
    await refused(*pair, json.dumps(frame), "bad_request", "k-1")


# --- binary and oversized frames ---------------------------------------------------


async def test_a_binary_frame(pair):
    a, b = pair
    await a.communicator.send_to(bytes_data=b'{"type": "ping"}')
    assert (await a.receive_type("error"))["code"] == "bad_request"
    await still_usable(a, b)


async def test_a_binary_frame_over_64_kib_closes_4009(pair):
    a, b = pair
    await a.communicator.send_to(bytes_data=b"x" * (64 * 1024 + 1))
    assert await a.closed_with() == 4009
    assert await b.nothing()


def padded(frame: dict[str, Any], size: int) -> str:
    """`frame` as JSON text of exactly `size` UTF-8 bytes (white space before the brace)."""
    text = json.dumps(frame, ensure_ascii=False)
    pad = size - len(text.encode("utf-8"))
    assert pad >= 0
    return " " * pad + text


async def test_a_frame_over_64_kib_closes_4009(pair):
    a, b = pair
    text = padded({"type": "message.send", "body": "too big"}, 64 * 1024 + 1)
    assert len(text.encode("utf-8")) == 65537
    await a.send_text(text)
    assert await a.closed_with() == 4009
    assert await b.nothing()
    assert await stored() == []


async def test_a_frame_of_64_kib_is_served(pair):
    a, b = pair
    await a.send_text(padded({"type": "ping"}, 64 * 1024))
    assert await a.receive() == {"type": "pong"}
    text = padded({"type": "message.send", "body": "big frame", "client_id": "big"}, 65536)
    await a.send_text(text)
    assert (await a.receive_type("message"))["body"] == "big frame"
    assert (await b.receive_type("message"))["body"] == "big frame"
    assert await stored() == [(1, "big frame", "alice", "big")]


async def test_the_limit_counts_bytes_not_characters(pair):
    a, b = pair
    # 22,000 characters, 66,000+ bytes.
    text = json.dumps({"type": "message.send", "body": "\u20ac" * 22_000}, ensure_ascii=False)
    assert len(text) < 64 * 1024 < len(text.encode("utf-8"))
    await a.send_text(text)
    assert await a.closed_with() == 4009
    assert await b.nothing()
    assert await stored() == []


async def test_a_long_body_below_the_byte_limit_is_too_long(pair):
    a, b = pair
    text = json.dumps({"type": "message.send", "body": "\u20ac" * 20_000}, ensure_ascii=False)
    assert len(text.encode("utf-8")) < 64 * 1024
    await refused(a, b, text, "too_long")
