"""The notes scenario: EDITORS people typing into one room's shared notes, over two workers.

Every editor is a Yjs client of its own (pycrdt, the Python bindings of Yrs)
speaking the notes socket's standard protocol (docs/protocol.md, The notes
socket) with a token of a user of its own: the handshake (sync step 1 both
ways), then one update message per keystroke. Editor i connects to worker
i % workers and types at the end of its own line of the note (before its
marker `[ii]`), so that all of them type into one text at once, each at its
own place, as people taking minutes together would.

A step: every editor types `rate` keystrokes a second for `seconds`, editor i's
k-th key due at t0 + (k + i / EDITORS) / rate (the editors spread over the
interval, each at an even pace). A keystroke is named by its Yjs id (client,
clock), read from the head of the update that carries it, so each editor
records when every other editor's keystroke arrived; latency is arrival minus
due time, on one machine's monotonic clock. After the last step, every editor's
text is compared with the document the database holds (its snapshot and the
updates after it, merged with pycrdt), and with each other's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pycrdt import Doc, Text
from targets.proc import process_cpu_seconds
from websockets.asyncio.client import ClientConnection, connect

# The site's own y-protocols codec (pure: pycrdt only), so that the bench speaks
# exactly what the server reads.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat.notes import codec

EDITORS = 50
WORKERS = 2
CLIENT_PROCESSES = 2
# Keystrokes a second per editor: a steady typist makes about 3 (36 words a minute).
KEY_RATES = (1.0, 2.0, 3.0, 5.0)
TARGET_RATE = 3.0
STEP_SECONDS = 10.0
P99_TARGET_MS = 100.0
# How long after a step's last due key a keystroke may still arrive to count.
DRAIN_SECONDS = 3.0
TEXT = "notes"
LETTERS = "etaoinshrdlucmfwypvbgk "


def keystroke_id(update: bytes) -> tuple[int, int] | None:
    """(client, clock) of the first struct of a v1 update that holds one struct, else None."""
    reader = codec.Reader(update)
    if reader.var_uint() != 1 or reader.var_uint() != 1:  # one group of one struct
        return None
    client = reader.var_uint()
    return client, reader.var_uint()


class Editor:
    """One person: a pycrdt document in step with the server over one socket."""

    def __init__(self, index: int, url: str) -> None:
        self.index = index
        self.url = url
        self.doc: Doc = Doc()
        self.text = self.doc.get(TEXT, type=Text)
        self.marker = f"[{index:02d}]"
        self.outgoing: list[bytes] = []
        self.applying = False
        self.subscription = self.doc.observe(self.changed)
        self.socket: ClientConnection | None = None
        self.synced = asyncio.Event()
        # (client, clock, monotonic seconds) of every single-key update received.
        self.arrivals: list[tuple[int, int, float]] = []
        self.errors: list[str] = []
        self.reader: asyncio.Task[None] | None = None
        self.answers: set[asyncio.Future[None]] = set()

    def changed(self, event: Any) -> None:
        if not self.applying:
            self.outgoing.append(event.update)

    async def open(self) -> None:
        self.socket = await connect(self.url, max_size=2**22, compression=None)
        self.reader = asyncio.ensure_future(self.read())
        await self.socket.send(codec.sync_step1(self.doc.get_state()))
        await asyncio.wait_for(self.synced.wait(), 30)

    async def read(self) -> None:
        assert self.socket is not None
        try:
            async for data in self.socket:
                if not isinstance(data, bytes):
                    self.errors.append("text frame")
                    continue
                self.received(data, time.monotonic())
        except Exception as error:  # counted: the step reports it
            self.errors.append(repr(error))

    def received(self, data: bytes, now: float) -> None:
        if data[0] != codec.SYNC:
            return  # awareness: none is sent here
        kind = data[1]
        payload = codec.Reader(data[2:]).var_bytes()
        if kind == codec.SYNC_STEP1:
            # The server's state vector: answer with what it lacks (nothing, here).
            update = self.doc.get_update(payload)
            answer = asyncio.ensure_future(self.send(codec.sync_step2(update)))
            self.answers.add(answer)
            answer.add_done_callback(self.answers.discard)
            return
        if kind == codec.SYNC_UPDATE:
            found = keystroke_id(payload)
            if found is not None:
                self.arrivals.append((found[0], found[1], now))
        self.applying = True
        try:
            self.doc.apply_update(payload)
        finally:
            self.applying = False
        if kind == codec.SYNC_STEP2:
            self.synced.set()

    async def send(self, data: bytes) -> None:
        assert self.socket is not None
        await self.socket.send(data)

    async def type_key(self, letter: str) -> tuple[int, int] | None:
        """One keystroke at the end of this editor's own line; the key's id."""
        text = str(self.text)
        at = text.find(self.marker)
        if at < 0:
            at = len(text)
            letter = letter + self.marker + "\n"
        self.text.insert(at, letter)
        updates, self.outgoing = self.outgoing, []
        sent = None
        for update in updates:
            sent = sent or keystroke_id(update)
            await self.send(codec.sync_update(update))
        return sent

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


async def _step(editors: list[Editor], rate: float, seconds: float, t0: float) -> dict[str, Any]:
    """Type the step's keys on time; what was sent and what arrived, for the main process."""
    for editor in editors:
        editor.arrivals = []
    sent: list[tuple[int, int, float, int]] = []
    keys = int(rate * seconds)

    async def typist(editor: Editor) -> None:
        for key in range(keys):
            due = t0 + (key + editor.index / EDITORS) / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            letter = LETTERS[(key + editor.index) % len(LETTERS)]
            found = await editor.type_key(letter)
            if found is not None:
                sent.append((found[0], found[1], due, editor.index))

    await asyncio.gather(*(typist(editor) for editor in editors))
    await asyncio.sleep(max(0.0, t0 + seconds + DRAIN_SECONDS - time.monotonic()))
    return {
        "sent": sent,
        "arrivals": {editor.index: editor.arrivals for editor in editors},
        "errors": sum(len(editor.errors) for editor in editors),
    }


def _client_main(connection: Connection, urls: dict[int, str]) -> None:
    """A client process: its editors, driven by the main process's commands."""

    async def main() -> None:
        editors = [Editor(index, url) for index, url in urls.items()]
        loop = asyncio.get_running_loop()
        for editor in editors:  # one at a time: the handshakes are not what is measured
            await editor.open()
        connection.send(("open", len(editors)))
        while True:
            command = await loop.run_in_executor(None, connection.recv)
            if command[0] == "step":
                _, rate, seconds, t0 = command
                connection.send(("step", await _step(editors, rate, seconds, t0)))
            elif command[0] == "texts":
                connection.send(("texts", {editor.index: str(editor.text) for editor in editors}))
            elif command[0] == "close":
                for editor in editors:
                    await editor.close()
                connection.send(("closed", sum(len(editor.errors) for editor in editors)))
                return

    asyncio.run(main())


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def step_summary(parts: list[dict[str, Any]], rate: float, seconds: float) -> dict[str, Any]:
    """Latencies of every keystroke at every other editor; keys that never arrived."""
    due: dict[tuple[int, int], tuple[float, int]] = {}
    for part in parts:
        for client, clock, when, sender in part["sent"]:
            due[(client, clock)] = (when, sender)
    latencies: list[float] = []
    missing = 0
    arrivals: dict[int, list[tuple[int, int, float]]] = {}
    for part in parts:
        arrivals.update(part["arrivals"])
    for receiver, received in arrivals.items():
        seen = {(client, clock): when for client, clock, when in received}
        # Every editor is owed every key but its own.
        for key, (when, sender) in due.items():
            if sender == receiver:
                continue
            if key in seen:
                latencies.append((seen[key] - when) * 1000)
            else:
                missing += 1
    values = np.array(latencies)
    return {
        "rate_per_editor": rate,
        "keys_per_s": rate * EDITORS,
        "seconds": seconds,
        "keys": len(due),
        "deliveries": len(latencies),
        "deliveries_per_s": len(latencies) / seconds,
        "missing": missing,
        "errors": sum(part["errors"] for part in parts),
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": float(values.max()) if len(values) else None,
    }


def stored_text(database_url: str, slug: str) -> str:
    """The room's notes as the database holds them: the snapshot and the updates after it."""
    doc: Doc = Doc()
    text = doc.get(TEXT, type=Text)
    document = (
        "SELECT d.snapshot, d.snapshot_number, r.id FROM chat_room r"
        " LEFT JOIN chat_notesdocument d ON d.room_id = r.id WHERE r.slug = %s"
    )
    updates = "SELECT data FROM chat_notesupdate WHERE room_id = %s AND number > %s ORDER BY number"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as lite:
            row = lite.execute(document.replace("%s", "?"), (slug,)).fetchone()
            assert row is not None, slug
            rows = lite.execute(updates.replace("%s", "?"), (row[2], row[1] or 0)).fetchall()
        lite.close()
    else:
        with psycopg.connect(database_url) as connection:
            row = connection.execute(document, (slug,)).fetchone()
            assert row is not None, slug
            rows = connection.execute(updates, (row[2], row[1] or 0)).fetchall()
    if row[0]:
        doc.apply_update(bytes(row[0]))
    for (data,) in rows:
        doc.apply_update(bytes(data))
    return str(text)


def run(
    *,
    ports: list[int],
    tokens: list[str],
    slug: str,
    database_url: str,
    say: Any,
    cpu: Any,
    settle: Any,
    rates: tuple[float, ...] = KEY_RATES,
    seconds: float = STEP_SECONDS,
) -> dict[str, Any]:
    """The scenario against running workers (`ports`), one token per editor; its results.

    `cpu()` gives (workers' CPU seconds, machine's busy CPU seconds) for the steps' cores;
    `settle()` waits until the workers are idle. A step that misses the target at or past
    TARGET_RATE ends the climb: the next would only say so louder, after a longer backlog.
    """
    assert len(tokens) >= EDITORS, "one user per editor"
    urls = {
        index: f"ws://127.0.0.1:{ports[index % len(ports)]}/ws/rooms/{slug}/notes/"
        f"?token={tokens[index]}"
        for index in range(EDITORS)
    }
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    processes = []
    for number in range(CLIENT_PROCESSES):
        mine = {index: url for index, url in urls.items() if index % CLIENT_PROCESSES == number}
        parent, child = context.Pipe()
        process = context.Process(target=_client_main, args=(child, mine), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    result: dict[str, Any] = {
        "editors": EDITORS,
        "workers": len(ports),
        "client_processes": CLIENT_PROCESSES,
        "step_seconds": seconds,
        "target_rate_per_editor": TARGET_RATE,
        "p99_target_ms": P99_TARGET_MS,
        "steps": [],
    }
    try:
        started = time.monotonic()
        for pipe in pipes:
            kind, _ = pipe.recv()
            assert kind == "open"
        result["open_seconds"] = time.monotonic() - started
        say(f"  {EDITORS} editors synced in {result['open_seconds']:.1f} s")
        for rate in rates:
            t0 = time.monotonic() + 0.5
            server_before, machine_before = cpu()
            client_before = sum(process_cpu_seconds(p.pid) for p in processes if p.pid)
            for pipe in pipes:
                pipe.send(("step", rate, seconds, t0))
            parts = [pipe.recv()[1] for pipe in pipes]
            server_after, machine_after = cpu()
            client_after = sum(process_cpu_seconds(p.pid) for p in processes if p.pid)
            wall = time.monotonic() - t0
            step = step_summary(parts, rate, seconds)
            step["server_cpu_cores"] = (server_after - server_before) / wall
            step["machine_cpu_cores"] = (machine_after - machine_before) / wall
            step["client_cpu_cores"] = (client_after - client_before) / wall
            step["passed"] = (
                step["p99_ms"] is not None
                and step["p99_ms"] <= P99_TARGET_MS
                and step["missing"] == 0
                and step["errors"] == 0
            )
            result["steps"].append(step)
            say(
                f"  {rate:g} keys/s per editor ({step['keys_per_s']:g}/s in all):"
                f" {'pass' if step['passed'] else 'FAIL'} p50 {ms(step['p50_ms'])} ms,"
                f" p99 {ms(step['p99_ms'])} ms, max {ms(step['max_ms'])} ms,"
                f" not delivered {step['missing']}, server {step['server_cpu_cores']:.2f}"
                f" client {step['client_cpu_cores']:.2f} cores"
            )
            settle()
            if not step["passed"] and rate >= TARGET_RATE:
                break
        # Everyone has everything by now (the workers are idle): every text, and the
        # database's, the same.
        time.sleep(1.0)
        texts: dict[int, str] = {}
        for pipe in pipes:
            pipe.send(("texts",))
            texts.update(pipe.recv()[1])
        stored = stored_text(database_url, slug)
        differing = sorted(index for index, text in texts.items() if text != stored)
        result["stored_chars"] = len(stored)
        result["editors_differing_from_database"] = differing
        result["all_equal_to_database"] = not differing and len(texts) == EDITORS
        say(
            f"  {len(stored)} characters stored; editors whose text differs from the"
            f" database's: {differing or 'none'}"
        )
    finally:
        for pipe in pipes:
            try:
                pipe.send(("close",))
                pipe.recv()
            except (EOFError, BrokenPipeError, OSError):
                pass
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    target = next((s for s in result["steps"] if s["rate_per_editor"] == TARGET_RATE), None)
    result["passed"] = bool(
        target
        and target["p99_ms"] is not None
        and target["p99_ms"] <= P99_TARGET_MS
        and target["missing"] == 0
        and result.get("all_equal_to_database")
    )
    return result
