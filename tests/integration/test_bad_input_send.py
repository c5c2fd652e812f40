"""Bad input on a live socket: message.send with bodies and client_ids of the wrong
type, empty, too long or forged, and odd but valid text stored exactly.

Every case is checked as tests/integration/bad_input_helpers.py tells.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.bad_input_helpers import (
    KIB,
    MISSING,
    OBSERVER,
    SENDER,
    WRONG_TYPES,
    frame_text,
    stored,
)
from tests.integration.bad_input_helpers import db as db  # a fixture
from tests.integration.bad_input_helpers import tokens as tokens  # a fixture
from tests.integration.bad_input_helpers import workers as workers  # a fixture
from tests.integration.bad_input_sockets import Pair
from tests.integration.bad_input_sockets import pair as pair  # a fixture
from tests.integration.bad_input_sockets import stage as stage  # a fixture

# One event loop for the module: the shared sockets live across cases.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def message_send(**fields: Any) -> str:
    """A `message.send` frame's text."""
    return frame_text({"type": "message.send", **fields})


@pytest.mark.parametrize("body", [*WRONG_TYPES, pytest.param(MISSING, id="missing")])
async def test_body_of_a_wrong_type(pair: Pair, body: object) -> None:
    await pair.refused(message_send(body=body, client_id="t-1"), "bad_request", client_id="t-1")


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 65, id="65-chars"),
        pytest.param("\U0001f600" * 65, id="65-emoji"),
        pytest.param("x" * 10_000, id="10000-chars"),
    ],
)
async def test_an_invalid_client_id_string_is_refused_and_echoed_as_sent(
    pair: Pair, client_id: str
) -> None:
    await pair.refused(
        message_send(body="hi", client_id=client_id), "bad_request", client_id=client_id
    )


@pytest.mark.parametrize(
    "client_id",
    [
        *(param for param in WRONG_TYPES if param.values[0] is not None),
        # Strings the server never emits: strict JSON peers refuse them.
        pytest.param("a\x00b", id="nul"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
async def test_a_client_id_the_server_cannot_echo_is_refused_without_one(
    pair: Pair, client_id: object
) -> None:
    await pair.refused(message_send(body="hi", client_id=client_id), "bad_request")


@pytest.mark.parametrize(
    ("client_id", "stored_client_id"),
    [
        pytest.param(None, None, id="null-is-absent"),
        pytest.param(MISSING, None, id="missing"),
        pytest.param("x" * 64, "x" * 64, id="64-chars"),
        pytest.param("\U0001f600" * 64, "\U0001f600" * 64, id="64-emoji"),
        pytest.param("<script>\u202e", "<script>\u202e", id="markup-and-bidi"),
    ],
)
async def test_valid_client_ids_are_stored(
    pair: Pair, client_id: object, stored_client_id: str | None
) -> None:
    number = pair.last_id + 1
    await pair.sender.send({"type": "message.send", "body": "hi", "client_id": client_id})
    ack = await pair.sender.receive()
    assert (ack["type"], ack["id"], ack["client_id"]) == ("message", number, stored_client_id)
    seen = await pair.observer.receive()
    assert (seen["type"], seen["id"], seen["client_id"]) == ("message", number, None)
    pair.rows.append((number, "hi", SENDER, stored_client_id, False, False))
    assert stored(pair.db, pair.slug) == pair.rows
    await pair.still_usable()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="space"),
        pytest.param(" \t\n\r\x0b\x0c ", id="ascii-white-space"),
        pytest.param("\u3000\u00a0\u2003\u2028\u2029\u202f\u205f\u0085\u1680", id="unicode-spaces"),
    ],
)
async def test_empty_body(pair: Pair, body: str) -> None:
    await pair.refused(message_send(body=body, client_id="e-1"), "empty", client_id="e-1")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("a" * 4001, id="4001-ascii"),
        pytest.param("\U0001f600" * 4001, id="4001-emoji"),
        pytest.param("e\u0301" * 2000 + "e", id="4001-with-combining"),
        pytest.param(" " + "\u00e9" * 4001 + " ", id="4001-once-stripped"),
        pytest.param("\u20ac" * 20_000, id="20000-below-64-kib"),
    ],
)
async def test_body_too_long(pair: Pair, body: str) -> None:
    text = frame_text({"type": "message.send", "body": body, "client_id": "l-1"}, ascii_only=False)
    assert len(text.encode("utf-8")) <= 64 * KIB
    await pair.refused(text, "too_long", client_id="l-1")


@pytest.mark.parametrize(
    ("body", "stored_body"),
    [
        pytest.param("a" * 4000, "a" * 4000, id="4000-ascii"),
        pytest.param("\U0001f600" * 4000, "\U0001f600" * 4000, id="4000-emoji"),
        pytest.param("e\u0301" * 2000, "e\u0301" * 2000, id="4000-with-combining"),
        pytest.param("\u3000 " + "b" * 4000 + " \n", "b" * 4000, id="4000-once-stripped"),
    ],
)
async def test_body_at_the_limit_is_stored(pair: Pair, body: str, stored_body: str) -> None:
    await pair.accepted(body, stored_body, client_id=pair.unique("ok"), ascii_only=False)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"type": "message.send", "body": "a\\u0000b", "client_id": "n-1"}', id="nul"),
        pytest.param(
            '{"type": "message.send", "body": "\\u0000", "client_id": "n-1"}', id="only-nul"
        ),
        pytest.param(
            '{"type": "message.send", "body": "a\\ud800b", "client_id": "n-1"}', id="lone-high"
        ),
        pytest.param(
            '{"type": "message.send", "body": "\\udfff", "client_id": "n-1"}', id="lone-low"
        ),
        pytest.param(
            '{"type": "message.send", "body": "\\ude00\\ud83d", "client_id": "n-1"}',
            id="reversed-pair",
        ),
    ],
)
async def test_nul_and_unpaired_surrogates_in_body(pair: Pair, text: str) -> None:
    await pair.refused(text, "bad_request", client_id="n-1")


GOOD_BODIES = [
    pytest.param(
        "\U0001f600 \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467", id="emoji"
    ),
    pytest.param("\U0001f1fa\U0001f1e6 \U0001f3f3\ufe0f\u200d\U0001f308", id="flags"),
    pytest.param("\U0001d11e \U0010ffff", id="astral"),
    pytest.param("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", id="hebrew"),
    pytest.param(
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", id="arabic"
    ),
    pytest.param("\u202egpj.exe\u202c \u2067isolated\u2069 \u200fmark\u200e", id="bidi-controls"),
    pytest.param("e\u0301 n\u0303 a\u0300\u0301\u0302\u0303\u0304", id="combining"),
    pytest.param("\u0301starts with a mark", id="leading-combining"),
    pytest.param("Z" + "\u0351\u0352\u0353\u0354" * 60, id="zalgo"),
    pytest.param("<b>bold</b> &amp; &lt;tag&gt; &#x27;", id="html"),
    pytest.param("<script>alert(document.cookie)</script>", id="script"),
    pytest.param('<img src=x onerror="alert(1)">', id="img-onerror"),
    pytest.param("{{ request.user }} {% csrf_token %} ${x} `id`", id="template-syntax"),
    pytest.param("'; DROP TABLE chat_message; --", id="sql"),
    pytest.param("\"'\\n \\u0000 \\", id="quotes-and-backslashes"),
    pytest.param('{"type": "error", "code": "bad_request"}', id="json-in-body"),
    pytest.param("".join(map(chr, [*range(1, 9), *range(14, 32)])), id="c0-controls"),
    pytest.param("\x1b[31mred\x1b[0m \x07\x08\x7f", id="escape-sequences"),
    pytest.param("\x80\x81\x9b\x9f", id="c1-controls"),
    pytest.param("\x1c\x1dx\x1e\x1f", id="separators-are-not-white-space"),
    pytest.param("\u200bzero width\u200b", id="zero-width-space-kept"),
    pytest.param("\ufeffa\ufffeb\uffff", id="bom-and-noncharacters"),
    pytest.param("a\tb\nc\r\nd\u2028e\u3000f", id="inner-white-space"),
]


@pytest.mark.parametrize("ascii_only", [True, False], ids=["json-escapes", "raw-utf8"])
@pytest.mark.parametrize("body", GOOD_BODIES)
async def test_good_text_is_stored_and_delivered_exactly(
    pair: Pair, body: str, ascii_only: bool
) -> None:
    await pair.accepted(body, body, client_id=pair.unique("g"), ascii_only=ascii_only)


async def test_surrounding_white_space_is_stripped(pair: Pair) -> None:
    body = " \t\n\u00a0\u3000 padded \u2029\u0085 "
    await pair.accepted(body, "padded", client_id=pair.unique("w"), ascii_only=False)


async def test_forged_fields_of_a_send_are_ignored(pair: Pair) -> None:
    number = pair.last_id + 1
    client_id = pair.unique("f")
    forged = {
        "type": "message.send",
        "body": "mine",
        "client_id": client_id,
        "id": 10**30,
        "user": OBSERVER,
        "room": "general",
        "edited": True,
        "created": "1970-01-01T00:00:00Z",
    }
    await pair.sender.send(forged)
    ack = await pair.sender.receive()
    assert (ack["id"], ack["user"], ack["room"]) == (number, SENDER, pair.slug)
    assert (ack["edited"], ack["client_id"]) == (False, client_id)
    assert ack["created"] != forged["created"]
    seen = await pair.observer.receive()
    assert seen == {**ack, "client_id": None}
    pair.rows.append((number, "mine", SENDER, client_id, False, False))
    assert stored(pair.db, pair.slug) == pair.rows
    await pair.still_usable()
