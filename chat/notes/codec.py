"""The notes socket's wire: y-protocols messages in lib0 encoding (docs/protocol.md).

A binary frame is one message: a varuint type, then its body.

- `0` sync: `0,0,<state vector>` step 1; `0,1,<update>` step 2; `0,2,<update>` update
  (each a varuint length and the bytes);
- `1` awareness: `1,<awareness update>` (a count, then per client its id, clock and
  state as JSON text);
- `2` auth: `2,0,<reason>` permission denied (server to client only);
- `3` query awareness;
- `100,<n>` (the site's extension, sent only to `?acks=1` sockets): the first n
  updates this socket sent are settled (stored, or refused with an auth message).

Reading is strict: whatever is not exactly one such message, an update or a
state vector that Yrs cannot decode, or an awareness state that is not JSON,
raises `Malformed` (the socket closes with 4422), before anything is applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3
ACKED = 100

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_DENIED = 0
# The canonical empty update (no structs, no deletions): nothing to store.
EMPTY_UPDATE = b"\x00\x00"
# lib0 reads varuints of at most 53 bits (JavaScript's safe integers): 8 bytes.
VARUINT_MAX_BYTES = 8

# The reasons of `2,0,<reason>` (docs/protocol.md).
READ_ONLY = "read-only"
ARCHIVED = "archived"
TOO_LARGE = "too-large"


class Malformed(ValueError):
    """Not a valid Yjs message: the socket closes with 4422 (CloseCode.MALFORMED)."""


@dataclass(frozen=True)
class SyncStep1:
    state: bytes


@dataclass(frozen=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    # The state as JSON text; "null" when the client left.
    state: str


@dataclass(frozen=True)
class Awareness:
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True)
class QueryAwareness:
    pass


@dataclass(frozen=True)
class Auth:
    """An auth message from a client: nothing to do (y-websocket clients send none)."""


Message = SyncStep1 | SyncStep2 | SyncUpdate | Awareness | QueryAwareness | Auth


class Reader:
    """lib0 decoding of one buffer; every short read raises Malformed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def var_uint(self) -> int:
        value = shift = 0
        for _ in range(VARUINT_MAX_BYTES):
            if self.at >= len(self.data):
                raise Malformed("a truncated varuint")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise Malformed("a varuint longer than 53 bits")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self.at + length
        if end > len(self.data):
            raise Malformed("a truncated byte array")
        value, self.at = self.data[self.at : end], end
        return value

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("a string that is not UTF-8") from None

    def end(self) -> None:
        if self.at != len(self.data):
            raise Malformed("bytes after the message")


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_bytes(value: bytes) -> bytes:
    return var_uint(len(value)) + value


def var_string(value: str) -> bytes:
    return var_bytes(value.encode("utf-8"))


def update_check(update: bytes) -> None:
    """Malformed unless Yrs decodes `update` (tried on an empty document of its own)."""
    if update == EMPTY_UPDATE:
        return
    try:
        Doc().apply_update(update)
    except Exception as error:  # ValueError: "Cannot decode update"
        raise Malformed(f"an update that does not decode: {error}") from None
    except BaseException as error:  # a panic inside Yrs (pyo3's PanicException)
        if type(error).__name__ != "PanicException":
            raise
        raise Malformed("an update Yrs cannot apply") from None


def state_check(state: bytes) -> None:
    """Malformed unless Yrs decodes the state vector `state`."""
    try:
        Doc().get_update(state)
    except Exception:
        raise Malformed("a state vector that does not decode") from None


def _awareness(body: bytes) -> Awareness:
    reader = Reader(body)
    entries = []
    for _ in range(reader.var_uint()):
        client_id, clock, state = reader.var_uint(), reader.var_uint(), reader.var_string()
        try:
            json.loads(state)
        except ValueError:
            raise Malformed("an awareness state that is not JSON") from None
        entries.append(AwarenessEntry(client_id=client_id, clock=clock, state=state))
    reader.end()
    return Awareness(entries=tuple(entries))


def message_read(data: bytes) -> Message:
    """The one y-protocols message of a binary frame, checked; or Malformed."""
    reader = Reader(data)
    kind = reader.var_uint()
    message: Message
    if kind == SYNC:
        step = reader.var_uint()
        payload = reader.var_bytes()
        if step == SYNC_STEP1:
            state_check(payload)
            message = SyncStep1(state=payload)
        elif step in (SYNC_STEP2, SYNC_UPDATE):
            update_check(payload)
            message = SyncStep2(payload) if step == SYNC_STEP2 else SyncUpdate(payload)
        else:
            raise Malformed(f"unknown sync message {step}")
    elif kind == AWARENESS:
        message = _awareness(reader.var_bytes())
    elif kind == QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == AUTH:
        reader.var_uint()
        reader.var_string()
        message = Auth()
    else:
        raise Malformed(f"unknown message type {kind}")
    reader.end()
    return message


# --- what the server sends ------------------------------------------------------------


def sync_step1(state: bytes) -> bytes:
    return var_uint(SYNC) + var_uint(SYNC_STEP1) + var_bytes(state)


def sync_step2(update: bytes) -> bytes:
    return var_uint(SYNC) + var_uint(SYNC_STEP2) + var_bytes(update)


def sync_update(update: bytes) -> bytes:
    return var_uint(SYNC) + var_uint(SYNC_UPDATE) + var_bytes(update)


def awareness(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    body = var_uint(len(entries)) + b"".join(
        var_uint(entry.client_id) + var_uint(entry.clock) + var_string(entry.state)
        for entry in entries
    )
    return var_uint(AWARENESS) + var_bytes(body)


def auth_denied(reason: str) -> bytes:
    return var_uint(AUTH) + var_uint(AUTH_DENIED) + var_string(reason)


def acked(count: int) -> bytes:
    return var_uint(ACKED) + var_uint(count)


def entry_of(value: dict[str, Any]) -> AwarenessEntry:
    """An awareness entry from its channel-layer form."""
    return AwarenessEntry(
        client_id=int(value["client_id"]), clock=int(value["clock"]), state=str(value["state"])
    )
