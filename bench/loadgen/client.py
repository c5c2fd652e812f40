"""One client process: its share of the sockets, driven by commands from the pool over a pipe."""

from __future__ import annotations

import array
import asyncio
import json
import time
from typing import Any

from loadgen.adapters import ADAPTERS, Adapter
from loadgen.sockets import Socket

# How long nothing must arrive after a step's sends before what was recorded is read.
QUIET_SECONDS = 0.25


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
