"""The load generator: client processes that hold the sockets, send and measure.

The bench's main process drives a `ClientPool` of client processes. Each runs
one asyncio loop (`websockets`) over its share of the sockets: socket `i`
belongs to process `i % processes`, connects to worker `i % workers` and, on
the site, authenticates as user `i % users`. More than one process, because
one Python loop tops out at a few tens of thousands of frames a second: the
report gives the processes' CPU use for every step, so that a step limited by
the client rather than the server shows as such.

A step offers `rate` messages a second into the room for `duration` seconds,
from the first `senders` sockets in turn (message m is due at t0 + m / rate,
from sender m % senders). Every body is JSON naming the step, the sender, the
sender's sequence number and the time the message was *due* (so a client
that falls behind, or a server that pushes back, shows as latency instead of
quietly lowering the rate). Every socket, the senders' included, is a
member: each message is owed to all of them. Per step and socket the client
counts unique deliveries, duplicates and messages that arrive after a later
one of the same sender (reordered); latency is receipt minus due time, on
one machine's clock.
"""

from __future__ import annotations

import array
import asyncio
import json
import multiprocessing
import time
from typing import Any

import numpy as np
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

# How long after a step's last due time a message may still arrive; anything
# later counts as not delivered for the step (it has failed on latency anyway).
DRAIN_SECONDS = 2.0
# How long nothing must arrive after a step's sends before what was recorded is read.
QUIET_SECONDS = 0.25


# --- adapters: one per wire format --------------------------------------------


class Adapter:
    """How a target's sockets are addressed, and its chat frames written and read."""

    # The site is ready once its `welcome` frame has arrived; the others at the handshake.
    ready_frame = False

    def __init__(self, spec: dict[str, Any]) -> None:
        self.ports: list[int] = spec["ports"]
        self.room: str = spec["room"]
        # Many rooms: socket i is in rooms[i // room_size].
        self.rooms: list[str] | None = spec.get("rooms")
        self.room_size: int = spec.get("room_size") or 1
        self.errors = 0

    def room_of(self, index: int) -> str:
        return self.rooms[index // self.room_size] if self.rooms else self.room

    def url(self, index: int, resume: bool = False) -> str:
        raise NotImplementedError

    def origin(self, index: int) -> str | None:
        return None

    def encode(self, body: str, client_id: str) -> str:
        raise NotImplementedError

    def decode(self, text: str) -> list[str]:
        """The bodies of the chat messages a frame carries (none for any other frame)."""
        raise NotImplementedError

    def port(self, index: int) -> int:
        return self.ports[index % len(self.ports)]


class SiteAdapter(Adapter):
    """The site: `?token=`, `message.send` with a client_id as the page sends, `message`."""

    ready_frame = True

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.tokens: list[str] = spec["tokens"]

    def url(self, index: int, resume: bool = False) -> str:
        token = self.tokens[index % len(self.tokens)]
        # A reconnecting client resumes after the last id it saw (none here).
        after = "&after=0" if resume else ""
        room = self.room_of(index)
        return f"ws://127.0.0.1:{self.port(index)}/ws/rooms/{room}/?token={token}{after}"

    def encode(self, body: str, client_id: str) -> str:
        return json.dumps({"type": "message.send", "body": body, "client_id": client_id})

    def decode(self, text: str) -> list[str]:
        frame = json.loads(text)
        kind = frame.get("type")
        if kind == "message":
            return [str(frame["body"])]
        if kind == "messages":  # a broadcast room's tick of messages
            return [str(message["body"]) for message in frame["messages"]]
        if kind == "error":
            self.errors += 1
        return []


class SiteBroadcastAdapter(SiteAdapter):
    """The site's broadcast room: the senders post as staff users; the audience
    watches without signing in (the room is open to viewers), as a browser's
    page would, with an Origin and no token."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.senders: int = spec["senders"]

    def url(self, index: int, resume: bool = False) -> str:
        if index < self.senders:
            return super().url(index, resume)
        after = "?after=0" if resume else ""
        return f"ws://127.0.0.1:{self.port(index)}/ws/rooms/{self.room}/{after}"

    def origin(self, index: int) -> str | None:
        return None if index < self.senders else f"http://127.0.0.1:{self.port(index)}"


class TutorialAdapter(Adapter):
    """The Channels tutorial: `/ws/chat/<room>/`, {"message": ...} both ways."""

    def url(self, index: int, resume: bool = False) -> str:
        return f"ws://127.0.0.1:{self.port(index)}/ws/chat/{self.room_of(index)}/"

    def origin(self, index: int) -> str | None:
        # AllowedHostsOriginValidator refuses a socket without Origin, as a browser sends it.
        return f"http://127.0.0.1:{self.port(index)}"

    def encode(self, body: str, client_id: str) -> str:
        return json.dumps({"message": body})

    def decode(self, text: str) -> list[str]:
        return [str(json.loads(text)["message"])]


class NodeAdapter(Adapter):
    """The ws broadcast server: raw text, every frame to every client."""

    def url(self, index: int, resume: bool = False) -> str:
        return f"ws://127.0.0.1:{self.port(index)}/"

    def encode(self, body: str, client_id: str) -> str:
        return body

    def decode(self, text: str) -> list[str]:
        return [text]


ADAPTERS: dict[str, type[Adapter]] = {
    "site": SiteAdapter,
    "site-broadcast": SiteBroadcastAdapter,
    "tutorial": TutorialAdapter,
    "node": NodeAdapter,
}


# --- one client process -------------------------------------------------------


class StepState:
    """What the sockets of one process received in one step."""

    def __init__(self, key: int, sockets: int) -> None:
        self.key = key
        self.seen: list[set[int]] = [set() for _ in range(sockets)]
        self.top: list[dict[int, int]] = [{} for _ in range(sockets)]
        self.unique = [0] * sockets
        self.latencies = array.array("d")
        self.duplicates = 0
        self.reordered = 0

    def record(self, slot: int, sender: int, number: int, latency: float) -> None:
        mark = sender << 32 | number
        seen = self.seen[slot]
        if mark in seen:
            self.duplicates += 1
            return
        seen.add(mark)
        self.unique[slot] += 1
        top = self.top[slot]
        if number < top.get(sender, -1):
            self.reordered += 1
        else:
            top[sender] = number
        self.latencies.append(latency)


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


class ClientProcess:
    """One process's sockets, driven by commands from the pool over a pipe."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.adapter: Adapter | None = None
        self.indices: list[int] = []  # global socket numbers, by slot
        self.sockets: dict[int, Socket] = {}  # slot -> open socket
        self.step: StepState | None = None
        self.last_frame = 0.0
        self.closing = False

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, arguments = await loop.run_in_executor(None, self.pipe.recv)
            if command == "exit":
                await self.do_close()
                self.pipe.send({})
                return
            cpu = time.process_time()
            try:
                result = await getattr(self, f"do_{command}")(**arguments)
            except Exception as error:  # reported to the pool, which raises it
                result = {"error": f"{command}: {error!r}"}
            result["cpu"] = time.process_time() - cpu
            self.pipe.send(result)

    # --- sockets

    async def connect_one(self, slot: int, resume: bool = False) -> None:
        adapter = self.adapter
        assert adapter is not None
        index = self.indices[slot]
        url = adapter.url(index, resume)
        loop = asyncio.get_running_loop()

        def on_text(text: str, now: float) -> None:
            self.receive(slot, text, now)

        _, socket = await loop.create_connection(
            lambda: Socket(url, adapter.origin(index), on_text, adapter.ready_frame),
            "127.0.0.1",
            adapter.port(index),
        )
        try:
            await asyncio.wait_for(socket.ready, 120)
        except BaseException:
            await socket.close()
            raise
        self.sockets[slot] = socket

    async def connect_retrying(
        self, slot: int, gate: asyncio.Semaphore, refusals: list[str], resume: bool = False
    ) -> None:
        """connect_one, tried again after a refusal as any client would (four tries)."""
        for attempt in range(4):
            async with gate:
                try:
                    await self.connect_one(slot, resume)
                    return
                except Exception as error:  # refused, reset, timed out: all retried
                    refusals.append(repr(error))
                    if attempt == 3:
                        raise
            await asyncio.sleep(0.5 * (attempt + 1))

    def receive(self, slot: int, text: str, now: float) -> None:
        self.last_frame = max(self.last_frame, now)
        assert self.adapter is not None
        step = self.step
        for body in self.adapter.decode(text):
            if step is None:
                return
            fields = json.loads(body)
            if fields["k"] == step.key:
                step.record(slot, fields["s"], fields["n"], now - fields["t"])

    def unexpected_closes(self) -> dict[str, int]:
        """Close codes of sockets the server closed (not counting 1000), by code."""
        codes: dict[str, int] = {}
        for socket in self.sockets.values():
            code = socket.close_code
            if code is not None and code != 1000:
                codes[str(code)] = codes.get(str(code), 0) + 1
        return codes

    async def do_open(
        self, spec: dict[str, Any], indices: list[int], concurrency: int
    ) -> dict[str, Any]:
        """Open sockets `indices` (at most `concurrency` handshakes at once)."""
        self.adapter = ADAPTERS[spec["kind"]](spec)
        first = len(self.indices)
        self.indices.extend(indices)
        gate = asyncio.Semaphore(concurrency)
        refusals: list[str] = []

        async def one(slot: int) -> None:
            await self.connect_retrying(slot, gate, refusals)

        started = time.time()
        results = await asyncio.gather(
            *(one(slot) for slot in range(first, len(self.indices))), return_exceptions=True
        )
        failures = [repr(result) for result in results if isinstance(result, BaseException)]
        return {
            "opened": len(indices) - len(failures),
            "failures": failures[:5],
            "failed": len(failures),
            "refused": len(refusals),
            "refusals": refusals[:3],
            "seconds": time.time() - started,
        }

    async def do_close(self) -> dict[str, Any]:
        """Close every socket, cleanly, all at once."""
        sockets = list(self.sockets.values())
        self.sockets = {}
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
        return {"closed": len(sockets)}

    async def do_forget(self) -> dict[str, Any]:
        """Close every socket and forget them: the next `open` starts from socket 0."""
        result = await self.do_close()
        self.indices = []
        self.step = None
        return result

    async def do_reopen(self, concurrency: int) -> dict[str, Any]:
        """Open again every socket the server closed, as a client would reconnect."""
        closed = [slot for slot, socket in self.sockets.items() if socket.closed]
        for slot in closed:
            del self.sockets[slot]
        gate = asyncio.Semaphore(concurrency)
        refusals: list[str] = []
        await asyncio.gather(*(self.connect_retrying(slot, gate, refusals) for slot in closed))
        return {"reopened": len(closed)}

    async def do_trim(self, keep: int) -> dict[str, Any]:
        """Close and forget the sockets numbered `keep` and above (the last opened)."""
        slots = [slot for slot, index in enumerate(self.indices) if index >= keep]
        closing = [self.sockets.pop(slot) for slot in slots if slot in self.sockets]
        await asyncio.gather(*(socket.close() for socket in closing), return_exceptions=True)
        self.indices = [index for index in self.indices if index < keep]
        return {"closed": len(closing)}

    async def do_storm(self, start_at: float, concurrency: int) -> dict[str, Any]:
        """Reconnect every socket at `start_at`, all at once; each one's ready time.

        Sockets the server refused are opened again afterwards, `concurrency` at
        a time, so that the room is whole for what follows.
        """
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def one(slot: int) -> float:
            await self.connect_one(slot, resume=True)
            return time.time()

        slots = range(len(self.indices))
        results = await asyncio.gather(*(one(slot) for slot in slots), return_exceptions=True)
        done = [result for result in results if isinstance(result, float)]
        failures = [repr(result) for result in results if isinstance(result, BaseException)]
        gate = asyncio.Semaphore(concurrency)
        refusals: list[str] = []
        await asyncio.gather(
            *(
                self.connect_retrying(slot, gate, refusals, resume=True)
                for slot, result in zip(slots, results, strict=True)
                if isinstance(result, BaseException)
            )
        )
        return {
            "done_at": done,
            "failed": len(failures),
            "failures": failures[:5],
            "all_back_at": time.time(),
        }

    # --- steps

    async def do_step(
        self,
        key: int,
        start_at: float,
        duration: float,
        rate: float,
        senders: int,
        mine: list[tuple[int, int]],
    ) -> dict[str, Any]:
        """Send this process's share of a step: `mine` lists (sender number, slot)."""
        self.step = StepState(key, len(self.indices))
        if self.adapter is not None:
            self.adapter.errors = 0
        for socket in self.sockets.values():
            socket.record()
        end = start_at + duration
        results = await asyncio.gather(
            *(
                self.send_as(self.sockets[slot], key, sender, senders, rate, start_at, end)
                for sender, slot in mine
                if slot in self.sockets
            )
        )
        return {
            "sent": sum(sent for sent, _ in results),
            "sent_by": {
                sender: sent
                for (sender, slot), (sent, _) in zip(
                    [(sender, slot) for sender, slot in mine if slot in self.sockets],
                    results,
                    strict=True,
                )
            },
            "lag": max((lag for _, lag in results), default=0.0),
        }

    async def send_as(
        self,
        socket: Socket,
        key: int,
        sender: int,
        senders: int,
        rate: float,
        start_at: float,
        end: float,
    ) -> tuple[int, float]:
        """Sender `sender`'s messages of the step; (sent, how late the latest send was)."""
        assert self.adapter is not None
        encode = self.adapter.encode
        sent = 0
        lag = 0.0
        due = start_at + sender / rate
        while due < end:
            delay = due - time.time()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            else:
                lag = max(lag, -delay)
                if sent % 16 == 15:
                    await asyncio.sleep(0)  # behind: let the readers run all the same
            body = f'{{"k":{key},"s":{sender},"n":{sent},"t":{due:.6f}}}'
            socket.send(encode(body, f"{key}-{sender}-{sent}"))
            sent += 1
            due = start_at + (sent * senders + sender) / rate
        return sent, lag

    async def do_drain(self, expected: int | list[int], deadline: float) -> dict[str, Any]:
        """Wait until every socket has `expected` messages of the step (or as many
        as `expected` lists for its slot, when the sockets are in many rooms), or
        until `deadline`.

        What was recorded is read once nothing has arrived for QUIET_SECONDS (or
        at the deadline), so that reading it does not slow the step's last
        deliveries down; then whatever is still missing is waited for as it comes.
        """
        step = self.step
        assert step is not None
        while time.time() < deadline:
            latest = max(
                (s.recording[-1][0] for s in self.sockets.values() if s.recording), default=0.0
            )
            if latest and time.time() - latest >= QUIET_SECONDS:
                break
            await asyncio.sleep(0.02)
        for socket in self.sockets.values():
            socket.replay(stop=True)
        wanted = expected if isinstance(expected, list) else [expected] * len(self.indices)
        while time.time() < deadline:
            if all(step.unique[slot] >= wanted[slot] for slot in self.sockets):
                break
            await asyncio.sleep(0.02)
        return self.step_result(step)

    def step_result(self, step: StepState) -> dict[str, Any]:
        return {
            "unique": sum(step.unique[slot] for slot in range(len(self.indices))),
            "duplicates": step.duplicates,
            "reordered": step.reordered,
            "latencies": step.latencies.tobytes(),
            "errors": self.adapter.errors if self.adapter else 0,
            "closes": self.unexpected_closes(),
            "sockets": len(self.sockets),
        }

    async def do_quiet(self, idle: float, cap: float) -> dict[str, Any]:
        """Wait until no frame has arrived for `idle` seconds (at most `cap`)."""
        started = time.time()
        while time.time() - started < cap:
            if time.time() - self.last_frame >= idle:
                break
            await asyncio.sleep(0.05)
        step = self.step
        return {"unique": sum(step.unique) if step else 0, "waited": time.time() - started}


def child_main(pipe: Any) -> None:
    """A client process's entry point."""
    asyncio.run(ClientProcess(pipe).serve())


# --- the pool, in the bench's main process ------------------------------------


def percentiles(latencies: np.ndarray) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds (None without samples)."""
    if latencies.size == 0:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99 = np.percentile(latencies, [50, 99])
    return {
        "p50_ms": float(p50) * 1000,
        "p99_ms": float(p99) * 1000,
        "max_ms": float(latencies.max()) * 1000,
    }


class ClientPool:
    """The client processes, and the measurements made with them."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes = []
        self.processes = []
        for _ in range(processes):
            here, there = context.Pipe()
            process = context.Process(target=child_main, args=(there,), daemon=True)
            process.start()
            self.pipes.append(here)
            self.processes.append(process)
        self.sockets = 0
        self.key = 0
        # Sockets in many rooms of this size (the spec's `room_size`), or None for one room.
        self.room_size: int | None = None

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def call(self, command: str, arguments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run `command` in every process at once (its own arguments each); their results."""
        for pipe, kwargs in zip(self.pipes, arguments, strict=True):
            pipe.send((command, kwargs))
        results = [pipe.recv() for pipe in self.pipes]
        for result in results:
            if "error" in result:
                raise RuntimeError(result["error"])
        return results

    def call_all(self, command: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self.call(command, [kwargs] * len(self.pipes))

    def open(self, spec: dict[str, Any], count: int, concurrency: int = 48) -> dict[str, Any]:
        """Open `count` more sockets to `spec`, spread over the processes."""
        size = len(self.pipes)
        indices = [
            [i for i in range(self.sockets, self.sockets + count) if i % size == p]
            for p in range(size)
        ]
        share = max(1, concurrency // size)
        if spec.get("rooms"):
            assert self.sockets == 0, "sockets in many rooms are opened at once, from socket 0"
            self.room_size = spec["room_size"]
        results = self.call(
            "open", [{"spec": spec, "indices": ix, "concurrency": share} for ix in indices]
        )
        self.sockets += count
        failed = sum(result["failed"] for result in results)
        if failed:
            failures = [f for result in results for f in result["failures"]]
            raise RuntimeError(f"{failed} of {count} sockets failed to open: {failures}")
        return {
            "seconds": max(result["seconds"] for result in results),
            "refused": sum(result["refused"] for result in results),
            "refusals": [r for result in results for r in result["refusals"]][:3],
        }

    def forget(self) -> None:
        """Close every socket; the next open starts again from socket 0."""
        self.call_all("forget")
        self.sockets = 0
        self.room_size = None

    def reopen(self, concurrency: int) -> int:
        """Reconnect the sockets the server closed; how many there were."""
        share = max(1, concurrency // len(self.pipes))
        return sum(result["reopened"] for result in self.call_all("reopen", concurrency=share))

    def trim(self, count: int) -> None:
        """Close the sockets opened after the first `count`."""
        self.call_all("trim", keep=count)
        self.sockets = count

    def close_all(self) -> None:
        """Close every socket, remembering them for `storm`."""
        self.call_all("close")

    def storm(self, concurrency: int) -> dict[str, Any]:
        """Reconnect every socket closed by `close_all`, all at the same moment.

        Refused sockets then retry, `concurrency` at a time in all, until all are back.
        """
        start_at = time.time() + 0.5
        share = max(1, concurrency // len(self.pipes))
        results = self.call_all("storm", start_at=start_at, concurrency=share)
        done = np.array([t for result in results for t in result["done_at"]]) - start_at
        elapsed = float(done.max()) if done.size else float("nan")
        return {
            "clients": self.sockets,
            "failed": sum(result["failed"] for result in results),
            "failures": [f for result in results for f in result["failures"]][:5],
            "seconds": elapsed,
            # Refused clients retried, a few at a time, until every one was back.
            "all_back_seconds": max(result["all_back_at"] for result in results) - start_at,
            "handshakes_per_s": done.size / elapsed if done.size else 0.0,
            "p50_ms": float(np.percentile(done, 50)) * 1000 if done.size else None,
            "p99_ms": float(np.percentile(done, 99)) * 1000 if done.size else None,
        }

    def step(self, rate: float, duration: float, senders: int) -> dict[str, Any]:
        """One step at `rate` messages/s into the room; what every member received.

        In many rooms, `rate` is the total over all of them: each room's first
        socket sends its share, and each socket expects its own room's messages.
        """
        self.key += 1
        # At low rates a step lasts long enough for a few messages per sender slot.
        duration = max(duration, min(4.0, 2 / rate))
        size = len(self.pipes)
        room_size = self.room_size or 1
        if self.room_size:
            senders = self.sockets // room_size  # one per room
        senders = min(senders, self.sockets)
        mine: list[list[tuple[int, int]]] = [[] for _ in range(size)]
        for sender in range(senders):
            index = sender * room_size  # the sender's socket
            mine[index % size].append((sender, index // size))
        start_at = time.time() + 0.3
        wall = time.time()
        sent_results = self.call(
            "step",
            [
                {
                    "key": self.key,
                    "start_at": start_at,
                    "duration": duration,
                    "rate": rate,
                    "senders": senders,
                    "mine": mine[p],
                }
                for p in range(size)
            ],
        )
        sent = sum(result["sent"] for result in sent_results)
        deadline = start_at + duration + DRAIN_SECONDS
        if self.room_size:
            by_room = {k: n for result in sent_results for k, n in result["sent_by"].items()}
            # Socket i of the pool is slot i // size of process i % size.
            slots = [len(range(p, self.sockets, size)) for p in range(size)]
            wanted = [
                [by_room.get((p + slot * size) // room_size, 0) for slot in range(slots[p])]
                for p in range(size)
            ]
            drained = self.call("drain", [{"expected": w, "deadline": deadline} for w in wanted])
            expected = sum(map(sum, wanted))
        else:
            drained = self.call_all("drain", expected=sent, deadline=deadline)
            expected = sent * self.sockets
        wall = time.time() - wall
        unique = sum(result["unique"] for result in drained)
        latencies = np.concatenate(
            [np.frombuffer(result["latencies"], dtype=np.float64) for result in drained]
        )
        cpu = sum(r["cpu"] for r in sent_results) + sum(r["cpu"] for r in drained)
        closes: dict[str, int] = {}
        for result in drained:
            for code, count in result["closes"].items():
                closes[code] = closes.get(code, 0) + count
        measurement: dict[str, Any] = {
            "key": self.key,
            "offered_rate": rate,
            "sent_rate": sent / duration,
            "duration_s": duration,
            "sockets": self.sockets,
            "senders": senders,
            "sent": sent,
            "expected": expected,
            "delivered": unique,
            "delivered_per_s": unique / duration,
            "late_or_lost": expected - unique,
            "duplicates": sum(result["duplicates"] for result in drained),
            "reordered": sum(result["reordered"] for result in drained),
            "errors": sum(result["errors"] for result in drained),
            "unexpected_closes": closes,
            "send_lag_ms": max(result["lag"] for result in sent_results) * 1000,
            # CPU seconds of the client processes per wall second: 1.0 is one core.
            "client_cpu": cpu / wall,
            "client_cpu_max_process": max(
                (s["cpu"] + d["cpu"]) / wall for s, d in zip(sent_results, drained, strict=True)
            ),
            **percentiles(latencies),
        }
        if unique < expected:
            # Late, or lost? Wait for the server to go quiet, then count again.
            quiet = self.call_all("quiet", idle=0.5, cap=15.0)
            measurement["lost"] = expected - sum(result["unique"] for result in quiet)
        else:
            measurement["lost"] = 0
        return measurement

    def settle(self, idle: float = 0.3, cap: float = 15.0) -> None:
        """Wait until nothing has arrived on any socket for `idle` seconds."""
        self.call_all("quiet", idle=idle, cap=cap)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("exit", {}))
                pipe.recv()
            except (EOFError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
