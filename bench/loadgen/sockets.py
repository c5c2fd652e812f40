"""One client socket: websockets' sans-I/O protocol, read in place on an asyncio transport."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri


class Socket(asyncio.Protocol):
    """One client socket: websockets' sans-I/O protocol on a plain asyncio transport.

    websockets' asyncio connection costs a few tasks and futures per frame; at
    tens of thousands of frames a second that, not the server, would set the
    pace. Here each chunk read is parsed in place and every text frame handed
    to `on_text` at once; pings are answered and closes completed by the
    protocol itself. Once open, whole text frames are read by `read_frames`,
    a few microseconds each instead of websockets' few tens: at an audience's
    hundreds of thousands of frames a second, that would be the limit.

    During a step, what arrives is only timestamped and kept (`recording`), and
    read afterwards (`replay`): the client's work then does not compete with
    the servers' for the machine's cores while they are measured, and a
    message's latency is still the time its last byte arrived.
    """

    def __init__(self, url: str, origin: str | None, on_text: Any, wants_first: bool) -> None:
        self.protocol = ClientProtocol(
            parse_uri(url), origin=Origin(origin) if origin else None, max_size=2**22
        )
        self.on_text = on_text
        self.wants_first = wants_first  # the site's welcome frame ends the opening
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        # Set once open with nothing half-read by the protocol: frames are read here.
        self.fast = False
        self.buffer = bytearray()
        # (arrival time, bytes) while a step records; None when reading at once.
        self.recording: list[tuple[float, bytes]] | None = None
        self.now = 0.0  # the arrival time of what is being read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.recording is not None:
            self.recording.append((time.time(), data))
            return
        self.now = time.time()
        self.take(data)

    def record(self) -> None:
        if self.recording is None:
            self.recording = []

    def replay(self, *, stop: bool) -> None:
        """Read what was recorded, in order, as of when it arrived; `stop` recording."""
        chunks = self.recording or []
        self.recording = None if stop else []
        for self.now, data in chunks:
            self.take(data)

    def take(self, data: bytes) -> None:
        if self.fast:
            self.buffer += data
            self.read_frames()
            return
        protocol = self.protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    text = event.data.decode()
                    if self.wants_first:
                        self.first(text)
                    else:
                        self.on_text(text, self.now)
            elif isinstance(event, Response) and not self.ready.done():
                if protocol.handshake_exc is not None:
                    self.ready.set_exception(protocol.handshake_exc)
                elif not self.wants_first:
                    self.ready.set_result(None)
        self.flush()
        self.fast = (
            protocol.state is State.OPEN
            and not self.wants_first
            and not protocol.reader.buffer
            and protocol.current_size is None  # no fragmented message under way
        )

    def read_frames(self) -> None:
        """Whole unmasked, unfragmented text frames and pings; anything else (a close,
        a fragment) goes back to the protocol, with everything after it."""
        buffer = self.buffer
        size = len(buffer)
        at = 0
        while size - at >= 2:
            head, length = buffer[at], buffer[at + 1]
            if length & 0x80:
                break  # masked: not a server's frame; the protocol fails the connection
            start = at + 2
            if length == 126:
                if size - at < 4:
                    return self.keep(at)
                length = int.from_bytes(buffer[at + 2 : at + 4], "big")
                start = at + 4
            elif length == 127:
                if size - at < 10:
                    return self.keep(at)
                length = int.from_bytes(buffer[at + 2 : at + 10], "big")
                start = at + 10
            end = start + length
            if end > size:
                return self.keep(at)
            if head == 0x81:  # FIN, text
                self.on_text(buffer[start:end].decode(), self.now)
            elif head == 0x89:  # FIN, ping
                self.protocol.send_pong(bytes(buffer[start:end]))
                self.flush()
            else:
                break
            at = end
        else:
            return self.keep(at)
        rest = bytes(buffer[at:])
        buffer.clear()
        self.fast = False
        self.take(rest)

    def keep(self, at: int) -> None:
        del self.buffer[:at]

    def first(self, text: str) -> None:
        self.wants_first = False
        if json.loads(text).get("type") == "welcome":
            self.ready.set_result(None)
        else:
            self.ready.set_exception(RuntimeError(f"no welcome: {text[:200]}"))

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed while opening: {exc!r}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.protocol.close_expected() and self.protocol.state is State.CLOSED:
            self.transport.close()

    def send(self, text: str) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_text(text.encode())
            self.flush()

    @property
    def closed(self) -> bool:
        return self.lost.done()

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code if self.protocol.state is State.CLOSED else None

    async def close(self) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self.flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), 5)
        except TimeoutError:
            pass
        if self.transport is not None:
            self.transport.close()
