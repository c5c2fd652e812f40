"""Bad input on a live socket: room URLs that name no room, a private room of others,
paths no route matches, and malformed or huge `after=` values.

Every case is checked as tests/integration/bad_input_helpers.py tells.
"""

from __future__ import annotations

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.integration.bad_input_helpers import (
    BIGINT_MAX,
    MIB,
    as_seen_by_sender,
    message_fields,
    room_create,
)
from tests.integration.bad_input_helpers import db as db  # a fixture
from tests.integration.bad_input_helpers import tokens as tokens  # a fixture
from tests.integration.bad_input_helpers import workers as workers  # a fixture
from tests.integration.bad_input_sockets import Pair, Peer
from tests.integration.bad_input_sockets import pair as pair  # a fixture
from tests.integration.bad_input_sockets import stage as stage  # a fixture

# One event loop for the module: the shared sockets live across cases.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def handshake(url: str) -> tuple[str, int | None]:
    """How the server answers a socket that must be refused: ("http", status) or ("close", code)."""
    try:
        connection = await websockets.connect(url, max_size=4 * MIB, open_timeout=15)
    except InvalidStatus as error:
        return "http", error.response.status_code
    try:
        return "close", await Peer("refused", connection).close_code()
    finally:
        await connection.close()


# --- the socket's URL -----------------------------------------------------------------


@pytest.mark.parametrize(
    "slug",
    [
        pytest.param("no-such-room", id="unknown"),
        pytest.param("-", id="hyphen-only"),
        pytest.param("{SLUG}", id="uppercase"),
        pytest.param("a" * 50, id="50-chars-no-such-room"),
        pytest.param("a" * 51, id="51-chars"),
        pytest.param("a" * 5000, id="5000-chars"),
        pytest.param("%00", id="nul"),
        pytest.param("{slug}%00", id="slug-and-nul"),
        pytest.param("{slug}%20", id="slug-and-space"),
        pytest.param("{slug}%0A", id="slug-and-newline"),
        pytest.param("..", id="dot-dot"),
        pytest.param("%2e%2e", id="encoded-dot-dot"),
        pytest.param(".", id="dot"),
        pytest.param("caf\u00e9", id="unicode"),
        pytest.param("caf%C3%A9", id="encoded-unicode"),
        pytest.param("%ff", id="encoded-invalid-utf8"),
        pytest.param("%", id="bare-percent"),
        pytest.param("general%27%20OR%201=1", id="sql"),
        pytest.param("%3Cscript%3E", id="markup"),
    ],
)
async def test_room_urls_that_name_no_room_close_4404(pair: Pair, slug: str) -> None:
    slug = slug.replace("{slug}", pair.slug).replace("{SLUG}", pair.slug.upper())
    assert await handshake(pair.sender_url(f"/ws/rooms/{slug}/")) == ("close", 4404)
    await pair.still_usable()


async def test_a_private_room_of_others_closes_4404(pair: Pair) -> None:
    private = room_create(pair.db, kind="private")
    assert await handshake(pair.sender_url(f"/ws/rooms/{private}/")) == ("close", 4404)
    await pair.still_usable()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/ws/rooms/{slug}", id="no-trailing-slash"),
        pytest.param("/ws/rooms//", id="empty-slug"),
        pytest.param("/ws/rooms/{slug}%2Fx/", id="encoded-slash"),
        pytest.param("/ws/rooms/{slug}/extra/", id="extra-segment"),
        pytest.param("/ws/room/{slug}/", id="wrong-prefix"),
        pytest.param("/ws/rooms/{slug}/%0A", id="trailing-newline"),
        pytest.param("/ws/rooms/a b/", id="raw-space"),
    ],
)
async def test_paths_no_room_matches_are_refused_cleanly(pair: Pair, path: str) -> None:
    kind, code = await handshake(pair.sender_url(path.replace("{slug}", pair.slug)))
    # Refused, never a server error: closed like any unknown room (4404), or an
    # HTTP 4xx at the handshake.
    clean = (kind, code) == ("close", 4404) or (kind == "http" and 400 <= (code or 0) < 500)
    assert clean, f"{path} was answered {kind} {code}, not a clean refusal"
    await pair.still_usable()


@pytest.mark.parametrize(
    "after",
    [
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="word"),
        pytest.param("", id="empty"),
        pytest.param("1.5", id="fraction"),
        pytest.param("1e3", id="exponent"),
        pytest.param("+1", id="raw-plus"),
        pytest.param("%2B1", id="plus"),
        pytest.param("0x1", id="hex"),
        pytest.param("1_000", id="underscore"),
        pytest.param("%201", id="leading-space"),
        pytest.param("1%20", id="trailing-space"),
        pytest.param("%00", id="nul"),
        pytest.param("1%00", id="digit-and-nul"),
        pytest.param("%EF%BC%91", id="fullwidth-digit"),
        pytest.param("%D9%A1", id="arabic-indic-digit"),
    ],
)
async def test_a_malformed_after_closes_4400(pair: Pair, after: str) -> None:
    url = pair.sender_url(f"/ws/rooms/{pair.slug}/", f"after={after}")
    assert await handshake(url) == ("close", 4400)
    await pair.still_usable()


@pytest.mark.parametrize(
    "after",
    [
        pytest.param("0", id="zero"),
        pytest.param("007", id="leading-zeros"),
        pytest.param(str(BIGINT_MAX), id="bigint-max"),
        pytest.param(str(2**63), id="2**63"),
        pytest.param("9" * 40, id="40-digits"),
        pytest.param("9" * 5000, id="5000-digits"),
    ],
)
async def test_whole_numbers_of_any_size_are_a_valid_after(pair: Pair, after: str) -> None:
    await pair.own_message()
    await pair.sender.close()
    welcome = await pair.reconnect(after=after)
    assert welcome["last_id"] == pair.last_id
    # Every visible message after `after` is replayed (none beyond the newest),
    # then live messages arrive as ever. (int() refuses over 4300 digits.)
    resume = int(after) if len(after) < 100 else None
    for row in pair.visible():
        if resume is not None and row[0] > resume:
            replayed = await pair.sender.receive()
            assert replayed["type"] == "message", replayed
            assert message_fields(replayed) == as_seen_by_sender(row)
    await pair.still_usable()
