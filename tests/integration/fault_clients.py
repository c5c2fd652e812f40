"""Clients that keep streaming through a fault, and the checks that nothing was lost
or repeated (tests/integration/test_faults_*.py, test_order.py, test_scale_out.py).

They behave as the protocol asks of a client: on a close they reconnect with
`after=<last id seen>`, and resend every unanswered message with its client_id.
Whatever the fault, every client must end with the stored messages 1..N, each
exactly once and in order, and the database must hold each client_id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import websockets

from tests.integration.conftest import Cluster, Worker

# These tests are about faults, not about the rate limit.
GENEROUS = {"CHAT_RATE_LIMIT": "10000/10s"}


# A send is answered within the layer timeout (5 s) or the socket closes; more
# than this on an open socket is silence.
ANSWER_TIMEOUT = 15.0


RETRY_PAUSE = 0.2


ABNORMAL_CLOSURE = 1006


# --- a client that keeps going ----------------------------------------------


@dataclass
class Answer:
    """What one attempt at sending a message got."""

    client_id: str
    outcome: str  # "ack", "unavailable", "closed" or "silence"
    value: int | None  # the acknowledged id, or the close code
    sent_at: float
    answered_at: float


class Streamer:
    """One user's client: sends its messages and resumes after every close.

    A `message` frame carrying a client_id of this client is its acknowledgement;
    `unavailable` is answered by a resend after a pause; a close by a resend on
    the next socket, opened with `after=` the last id seen. `window` sends may be
    in flight at once. Everything that breaks the protocol lands in `violations`.
    """

    def __init__(
        self,
        cluster: Cluster,
        username: str,
        room: str,
        workers: list[int],
        count: int,
        window: int = 1,
    ) -> None:
        self.cluster = cluster
        self.username = username
        self.room = room
        # Where to connect, in order of preference; a worker that refuses the
        # TCP connection (killed) is passed over for the next.
        self.workers = workers
        self.plan = [f"{username}-{n}" for n in range(count)]
        self.window = window
        self.token = ""
        self.last_id = 0
        self.stream: list[dict[str, Any]] = []
        self.by_id: dict[int, dict[str, Any]] = {}
        self.acks: dict[str, int] = {}
        # Every acknowledgement as it arrived: (client_id, id).
        self.ack_order: list[tuple[str, int]] = []
        self.answers: list[Answer] = []
        self.closes: list[int] = []
        self.closed_at: list[float] = []
        self.violations: list[str] = []
        self.connections = 0
        self.attempts: Counter[str] = Counter()
        self.echoes: Counter[str] = Counter()
        self.pending: dict[str, asyncio.Future[tuple[str, int | None]]] = {}
        self.connection: Any = None
        self.connected = asyncio.Event()
        self.stopping = False

    @staticmethod
    def body(client_id: str) -> str:
        return f"body of {client_id}"

    def violation(self, text: str) -> None:
        self.violations.append(f"{self.username}: {text}")

    def url(self, worker: int) -> str:
        base = self.cluster.workers[worker].url.replace("http", "ws", 1)
        return f"{base}/ws/rooms/{self.room}/?token={self.token}&after={self.last_id}"

    # -- the socket side: connect, read, resume --

    async def keep_connected(self) -> None:
        """Stay connected until stopped: reconnect with after= after every close."""
        if not self.token:
            self.token = await asyncio.to_thread(self.cluster.token, self.username, self.workers[0])
        choice = 0
        while not self.stopping:
            worker = self.workers[choice % len(self.workers)]
            try:
                connection = await websockets.connect(self.url(worker), max_size=2**22)
            except websockets.InvalidStatus as error:
                # A refusal must be a close code after the handshake, never an HTTP error.
                self.violation(f"handshake answered HTTP {error.response.status_code}")
                await asyncio.sleep(RETRY_PAUSE)
                continue
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                choice += 1  # that worker is gone: try the next
                await asyncio.sleep(RETRY_PAUSE)
                continue
            self.connections += 1
            welcomed, code = await self.read(connection)
            if code is not None:
                self.closes.append(code)
                self.closed_at.append(time.monotonic())
            if not welcomed:
                await asyncio.sleep(RETRY_PAUSE)

    async def read(self, connection: Any) -> tuple[bool, int | None]:
        """Read one socket until it closes; (welcomed, close code)."""
        welcomed = False
        code: int | None = None
        try:
            while True:
                frame = json.loads(await connection.recv())
                if welcomed:
                    self.take(frame)
                    continue
                if frame.get("type") != "welcome":
                    self.violation(f"first frame is not welcome: {frame}")
                elif (frame["last_id"] or 0) < self.last_id:
                    self.violation(f"welcome last_id {frame['last_id']} < seen {self.last_id}")
                welcomed = True
                self.connection = connection
                self.connected.set()
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else ABNORMAL_CLOSURE
        finally:
            self.connected.clear()
            self.connection = None
            for answer in self.pending.values():
                if not answer.done():
                    answer.set_result(("closed", code))
        return welcomed, None if self.stopping else code

    def take(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "message":
            self.take_message(frame)
        elif kind == "error":
            answer = self.pending.get(frame.get("client_id"))
            if frame.get("code") == "unavailable" and answer is not None and not answer.done():
                answer.set_result(("unavailable", None))
            else:
                self.violation(f"unexpected error frame {frame}")
        elif kind not in {"presence", "typing", "pong"}:
            self.violation(f"unexpected frame {frame}")

    def take_message(self, frame: dict[str, Any]) -> None:
        number, client_id = frame["id"], frame.get("client_id")
        if frame["user"] != self.username and client_id is not None:
            self.violation(f"another user's client_id shown: {frame}")
        if client_id is not None:
            self.echoes[client_id] += 1
        if number <= self.last_id:
            # The one repeat the protocol allows: a resend's acknowledgement,
            # on the resending socket, of the message already seen.
            seen = self.by_id.get(number)
            allowed = (
                client_id is not None
                and seen is not None
                and seen.get("client_id") == client_id
                and self.echoes[client_id] <= self.attempts[client_id]
            )
            if not allowed:
                self.violation(f"duplicate id {number} after {self.last_id}: {frame}")
        else:
            if number != self.last_id + 1:
                self.violation(f"hole: id {number} after {self.last_id}")
            self.stream.append(frame)
            self.by_id[number] = frame
            self.last_id = number
        answer = self.pending.get(client_id)
        if answer is not None and not answer.done():
            answer.set_result(("ack", number))
            self.ack_order.append((client_id, number))

    # -- the sending side --

    async def ready(self) -> Any:
        while not self.connected.is_set():
            await self.connected.wait()
        return self.connection

    async def send_all(self, client_ids: list[str] | None = None, pace: float = 0.02) -> None:
        """Send each message until it is acknowledged, resending with the same client_id."""
        queue = list(self.plan if client_ids is None else client_ids)
        while queue:
            batch = queue[: self.window]
            connection = await self.ready()
            loop = asyncio.get_running_loop()
            for client_id in batch:
                self.attempts[client_id] += 1
                self.pending[client_id] = loop.create_future()
            sent_at = time.monotonic()
            with contextlib.suppress(websockets.ConnectionClosed):
                # A socket closing under the sends: read() answers them with the close.
                for client_id in batch:
                    frame = {"type": "message.send", "body": self.body(client_id)}
                    await connection.send(json.dumps({**frame, "client_id": client_id}))
            unacknowledged = []
            for client_id in batch:
                try:
                    answer = asyncio.shield(self.pending[client_id])
                    outcome, value = await asyncio.wait_for(answer, ANSWER_TIMEOUT)
                except TimeoutError:
                    self.violation(f"{client_id}: no answer in {ANSWER_TIMEOUT} s, socket open")
                    outcome, value = "silence", None
                self.answers.append(Answer(client_id, outcome, value, sent_at, time.monotonic()))
                if outcome == "ack":
                    assert value is not None
                    self.acks.setdefault(client_id, value)
                else:
                    unacknowledged.append(client_id)
            for client_id in batch:
                del self.pending[client_id]
            queue = unacknowledged + queue[len(batch) :]
            if any(a.outcome in {"unavailable", "silence"} for a in self.answers[-len(batch) :]):
                await asyncio.sleep(RETRY_PAUSE)
            await asyncio.sleep(pace)

    async def stop(self) -> None:
        self.stopping = True
        if self.connection is not None:
            await self.connection.close()


@contextlib.asynccontextmanager
async def streaming(
    clients: list[Streamer], timeout: float = 60
) -> AsyncIterator[asyncio.Task[Any]]:
    """Keep every client connected (and resuming) while each sends its plan.

    Yields the task sending everything; the block may inject faults meanwhile.
    """
    readers = [asyncio.create_task(client.keep_connected()) for client in clients]
    sending: asyncio.Task[Any] | None = None
    try:
        await until(lambda: all(c.connected.is_set() for c in clients), 20, "clients connected")
        senders = asyncio.gather(*(client.send_all() for client in clients))
        sending = asyncio.create_task(asyncio.wait_for(senders, timeout))
        yield sending
    finally:
        for client in clients:
            await client.stop()
        if sending is not None:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending  # its failure, if any, is the test's to report
        for reader in readers:
            reader.cancel()
        results = await asyncio.gather(*readers, return_exceptions=True)
        errors = [result for result in results if isinstance(result, Exception)]
        assert not errors, errors


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def converge(clients: list[Streamer], total: int, timeout: float = 20) -> None:
    """Every client has received every id up to `total` (live or by resume)."""
    try:
        await until(lambda: all(c.last_id >= total for c in clients), timeout, "convergence")
    except AssertionError:
        seen = {c.username: c.last_id for c in clients}
        raise AssertionError(f"not every client reached id {total}: {seen}") from None


# --- checks -----------------------------------------------------------------


def stored(database_url: str, slug: str) -> list[tuple[int, str, str, str | None]]:
    """The room's messages as the database holds them: (number, user, body, client_id)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT m.number, u.username, m.body, m.client_id FROM chat_message m"
            " JOIN chat_room r ON r.id = m.room_id JOIN auth_user u ON u.id = m.author_id"
            " WHERE r.slug = %s ORDER BY m.number",
            (slug,),
        ).fetchall()
    return [(int(n), str(u), str(b), c) for n, u, b, c in rows]


def assert_everyone_has_exactly_what_is_stored(
    clients: list[Streamer], rows: list[tuple[int, str, str, str | None]]
) -> None:
    violations = [text for client in clients for text in client.violations]
    assert not violations, violations
    planned = {client_id for client in clients for client_id in client.plan}
    stored_ids = [client_id for _, _, _, client_id in rows if client_id is not None]
    # Stored once each, and nothing but what was sent; numbered 1..N without holes.
    assert sorted(stored_ids) == sorted(planned)
    assert [number for number, _, _, _ in rows] == list(range(1, len(rows) + 1))
    for number, _, body, client_id in rows:
        assert client_id is None or body == Streamer.body(client_id), (number, body, client_id)
    expected = [(number, username, body) for number, username, body, _ in rows]
    for client in clients:
        seen = [(f["id"], f["user"], f["body"]) for f in client.stream]
        assert seen == expected, f"{client.username} saw {[s[0] for s in seen]}"
        by_client_id = {c: n for n, u, _, c in rows if u == client.username and c}
        assert client.acks == by_client_id, client.username


def healthz(worker: Worker) -> tuple[int, dict[str, Any]]:
    """The worker's /healthz, less its shared-frame counts (a diagnostic of its own,
    checked by test_shared_frames_live.py), which these tests do not look at."""
    try:
        with urllib.request.urlopen(worker.url + "/healthz", timeout=15) as response:
            report = json.load(response)
            report.pop("wire", None)
            return response.status, report
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, {"body": text[:500]}


def assert_no_crash(workers: list[Worker], pids: list[int]) -> None:
    """Same processes, still running, and no exception escaped a consumer."""
    for worker, pid in zip(workers, pids, strict=True):
        assert worker.process is not None
        assert worker.process.pid == pid and worker.process.poll() is None, worker.name
        log = worker.log()
        assert "Exception inside application" not in log, log[-4000:]


def pids_of(cluster: Cluster) -> list[int]:
    return [worker.process.pid for worker in cluster.workers if worker.process is not None]


async def open_socket(
    worker: Worker, room: str, token: str, after: int | None = None
) -> websockets.ClientConnection:
    """A raw socket, with a token fetched beforehand (the database may be down now)."""
    query = f"?token={token}" + ("" if after is None else f"&after={after}")
    url = worker.url.replace("http", "ws", 1) + f"/ws/rooms/{room}/{query}"
    return await websockets.connect(url, max_size=2**22)


async def close_code(connection: websockets.ClientConnection, timeout: float = 10) -> int | None:
    """The code the server closes with, ignoring frames sent before it (there must be none)."""
    frames = []
    try:
        while True:
            frames.append(await asyncio.wait_for(connection.recv(), timeout))
    except websockets.ConnectionClosed as closed:
        assert not frames, frames
        return closed.rcvd.code if closed.rcvd is not None else None
