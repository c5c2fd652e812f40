"""The socket protocol's wire format (docs/protocol-v1.md, The WebSocket; docs/protocol.md).

- Close codes, defined here once; the server and the page read them from here
  (the page through its template). daphne (autobahn) lets an application
  close only with 1000 or 3000-4999: anything else raises inside daphne
  instead of closing, so the codes that mirror standard ones are 40xx.
- Client frames, parsed into typed commands: JSON and field types are checked
  here (`bad_request`); what a value may be (a body's length, a client_id's)
  is the services' to decide, as for every other caller.
- The `after=` of a resume.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qs

from chat.errors import ChatError

# Ids beyond what the database stores (64-bit) are answered as "no such message".
MAX_ID = 2**63 - 1
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_SURROGATES_OR_NUL = re.compile("[\x00\ud800-\udfff]")


class CloseCode(IntEnum):
    """Why the server closed a socket."""

    # A malformed query parameter (`after`).
    BAD_QUERY = 4400
    # Not authenticated: anonymous, a bad or expired token, a password changed, logged out.
    UNAUTHENTICATED = 4401
    # The user is deactivated.
    FORBIDDEN = 4403
    # No such room, or one this user may not (or no longer) read.
    NOT_FOUND = 4404
    # Ten `rate_limited` answers in a row on one socket.
    FLOODING = 4429
    # A message larger than CHAT_FRAME_MAX_BYTES.
    TOO_BIG = 4009
    # The server failed unexpectedly serving this socket (it logged why):
    # reconnect with backoff and resume with `after=`. (docs/protocol.md)
    INTERNAL_ERROR = 4011
    # The server lost its broadcast channel (Redis restarted): reconnect and resume.
    SERVICE_RESTART = 4012
    # The channel layer or the database cannot serve now: try again later.
    TRY_AGAIN_LATER = 4013
    # The notes socket (docs/protocol.md): a message that is not a valid Yjs message
    # (garbage bytes, a truncated varuint, an update that does not decode, a text
    # frame). Nothing of it was applied or stored.
    MALFORMED = 4422


def close_codes() -> dict[str, int]:
    """Every close code by name, for the page."""
    return {code.name: code.value for code in CloseCode}


# --- client frames --------------------------------------------------------------------


@dataclass(frozen=True)
class SendMessage:
    body: str
    client_id: str | None
    reply_to: int | None = None
    # Upload ids (docs/protocol.md, Files and images); their number is the service's to check.
    attachments: tuple[int, ...] = ()


@dataclass(frozen=True)
class Typing:
    pass


@dataclass(frozen=True)
class History:
    """A page of history: before an id (or the newest), after one, or around one."""

    before: int | None
    limit: int
    after: int | None = None
    around: int | None = None


@dataclass(frozen=True)
class EditMessage:
    id: int
    body: str


@dataclass(frozen=True)
class DeleteMessage:
    id: int


@dataclass(frozen=True)
class Read:
    id: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class React:
    """`reaction.add` (present) or `reaction.remove`: one emoji on one message."""

    id: int
    emoji: str
    present: bool


@dataclass(frozen=True)
class Comment:
    """`comment.send`: a live comment, at `time` seconds into the room's media, if any."""

    body: str
    time: float | None


Command = (
    SendMessage | Typing | History | EditMessage | DeleteMessage | Read | Ping | React | Comment
)
Frame = dict[str, Any]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def decode(text: str | bytes, *, noun: str = "frame") -> object:
    """Strict JSON (no NaN or Infinity), or ChatError(bad_request): what every frame and
    every HTTP body is read with. Nesting too deep to read (RecursionError) is bad input
    like any other, never a server error."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ChatError("bad_request", f"the {noun} is not JSON") from None


def echoed_client_id(value: object) -> str | None:
    """The client_id an `error` answering this JSON value carries: as sent, valid or not.

    Only a string, and one the server may emit: strict JSON peers refuse NUL
    and unpaired surrogates, and the server never sends them.
    """
    client_id = value.get("client_id") if isinstance(value, dict) else None
    if isinstance(client_id, str) and not _SURROGATES_OR_NUL.search(client_id):
        return client_id
    return None


def whole_number(value: object, field: str, *, minimum: int = 0) -> int:
    """`value` if it is a whole number of at least `minimum`, or ChatError(bad_request)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ChatError("bad_request", f"{field} must be a whole number >= {minimum}")
    return value


def _required_id(frame: Frame) -> int:
    if "id" not in frame:
        raise ChatError("bad_request", "id is missing")
    return whole_number(frame["id"], "id")


def _string(frame: Frame, field: str) -> str:
    value = frame.get(field)
    if not isinstance(value, str):
        raise ChatError("bad_request", f"{field} must be a string")
    return value


def _client_id(frame: Frame) -> str | None:
    value = frame.get("client_id")
    if value is not None and not isinstance(value, str):
        raise ChatError("bad_request", "client_id must be a string")
    return value


def _history(frame: Frame) -> History:
    limit = frame.get("limit")
    limit = 50 if limit is None else whole_number(limit, "limit", minimum=1)
    if limit > 100:
        raise ChatError("bad_request", "limit must be 1 to 100")
    # Ids beyond the database's range are clamped: they name no message either way.
    cursors = {
        name: min(whole_number(frame[name], name), MAX_ID)
        for name in ("before", "after", "around")
        if frame.get(name) is not None
    }
    if len(cursors) > 1:
        raise ChatError("bad_request", "give at most one of before, after and around")
    return History(
        before=cursors.get("before"),
        limit=limit,
        after=cursors.get("after"),
        around=cursors.get("around"),
    )


def _attachments(frame: Frame) -> tuple[int, ...]:
    value = frame.get("attachments")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ChatError("bad_request", "attachments must be a list of upload ids")
    return tuple(whole_number(item, "an upload id", minimum=1) for item in value)


def _send(frame: Frame) -> SendMessage:
    reply_to = frame.get("reply_to")
    attachments = _attachments(frame)
    # A message of files alone may leave its body out.
    body = "" if attachments and "body" not in frame else _string(frame, "body")
    return SendMessage(
        body=body,
        client_id=_client_id(frame),
        reply_to=None if reply_to is None else whole_number(reply_to, "reply_to"),
        attachments=attachments,
    )


def _react(frame: Frame, *, present: bool) -> React:
    return React(id=_required_id(frame), emoji=_string(frame, "emoji"), present=present)


def _comment(frame: Frame) -> Comment:
    time = frame.get("time")
    if time is not None and (
        not isinstance(time, int | float) or isinstance(time, bool) or not 0 <= time <= 10**9
    ):
        raise ChatError("bad_request", "time must be a number of seconds >= 0")
    return Comment(body=_string(frame, "body"), time=None if time is None else float(time))


_PARSERS: dict[str, Callable[[Frame], Command]] = {
    "comment.send": _comment,
    "message.send": _send,
    "reaction.add": lambda f: _react(f, present=True),
    "reaction.remove": lambda f: _react(f, present=False),
    "typing": lambda f: Typing(),
    "history": _history,
    "message.edit": lambda f: EditMessage(id=_required_id(f), body=_string(f, "body")),
    "message.delete": lambda f: DeleteMessage(id=_required_id(f)),
    "read": lambda f: Read(id=_required_id(f)),
    "ping": lambda f: Ping(),
}


def command(value: object) -> Command:
    """The command a decoded frame asks for, or ChatError(bad_request)."""
    if not isinstance(value, dict):
        raise ChatError("bad_request", "the frame is not a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise ChatError("bad_request", "the frame has no type")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ChatError("bad_request", "unknown frame type")
    return parser(value)


def too_big(text: str | None, data: bytes | None, *, limit: int) -> bool:
    """Whether a WebSocket message is over `limit` bytes (4009), text or binary."""
    if data is not None:
        return len(data) > limit
    # 4 bytes per code point at most: only long text needs encoding to measure.
    return text is not None and len(text) * 4 > limit and len(text.encode("utf-8")) > limit


# --- the query of a socket's URL -------------------------------------------------------


def resume_after(query_string: bytes) -> int | None:
    """The `after=` of a resume: None without one; ValueError if it is not a whole number.

    Any whole number is valid; one of more digits than MAX_ID has is beyond
    every id (and int() refuses over 4300 digits).
    """
    # keep_blank_values: `?after=` is present and malformed (4400), not absent.
    query = parse_qs(query_string.decode("latin1"), keep_blank_values=True)
    if "after" not in query:
        return None
    raw = query["after"][0]
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise ValueError(f"after={raw!r} is not a whole number")
    return MAX_ID if len(raw) > 19 else min(int(raw), MAX_ID)
