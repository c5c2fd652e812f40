"""Faults with real processes: a killed worker, a Redis outage, a database down or slow.

Clients stream messages through real daphne workers while a fault is injected.
They behave as the protocol asks of a client: on a close they reconnect with
`after=<last id seen>`, and resend every unanswered message with its client_id.
Whatever the fault, every client must end with the stored messages 1..N, each
exactly once and in order, and the database must hold each client_id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import websockets

from tests.integration.conftest import Client, Cluster, Worker, free_port

pytestmark = pytest.mark.integration

# These tests are about faults, not about the rate limit.
GENEROUS = {"CHAT_RATE_LIMIT": "10000/10s"}
# A send is answered within the layer timeout (5 s) or the socket closes; more
# than this on an open socket is silence.
ANSWER_TIMEOUT = 15.0
RETRY_PAUSE = 0.2
# Close codes a fault may produce (docs/protocol-v1.md): restart, try again later.
FAULT_CLOSE_CODES = {4012, 4013}
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


# --- a database that can fail on command ------------------------------------


class DatabaseProxy:
    """A TCP proxy between the workers and PostgreSQL, on a thread of its own.

    `down()` cuts every connection and refuses new ones (accepted, then reset);
    `slow(seconds)` holds every chunk of bytes, both ways, that long; `up()`
    ends both. Its own thread keeps it serving while the test blocks its loop.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.delay = 0.0
        self.refusing = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None

    def url(self, database_url: str) -> str:
        """`database_url`, through this proxy."""
        parts = urlsplit(database_url)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def start(self) -> None:
        self.thread.start()
        self.server = self.run(asyncio.start_server(self.serve, "127.0.0.1", self.port))

    def down(self) -> None:
        self.run(self._set(refusing=True))

    def slow(self, seconds: float) -> None:
        self.run(self._set(delay=seconds))

    def up(self) -> None:
        self.run(self._set(refusing=False, delay=0.0))

    async def _set(self, *, refusing: bool | None = None, delay: float | None = None) -> None:
        if delay is not None:
            self.delay = delay
        if refusing is not None:
            self.refusing = refusing
        if self.refusing:
            for writer in list(self.writers):
                writer.transport.abort()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, upstream_writer}
        try:
            await asyncio.gather(
                self.pipe(reader, upstream_writer), self.pipe(upstream_reader, writer)
            )
        finally:
            self.writers -= {writer, upstream_writer}

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()  # the other direction ends with it

    async def _shutdown(self) -> None:
        await self._set(refusing=True)
        assert self.server is not None
        self.server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self.run(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def database_proxy(database_url: str) -> Iterator[DatabaseProxy]:
    """A proxy to the test database; request it before `cluster_factory` (it outlives them)."""
    parts = urlsplit(database_url)
    proxy = DatabaseProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


# --- a worker killed -----------------------------------------------------------


async def test_sigkill_of_a_worker_loses_and_repeats_nothing(cluster_factory, database_url, room):
    cluster = cluster_factory(2, **GENEROUS)
    pids = pids_of(cluster)
    doomed = cluster.workers[1]
    assert doomed.process is not None
    # Users 0 and 2 on worker 0, users 1 and 3 on the doomed worker 1.
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2, 0], count=12) for i in range(4)
    ]
    async with streaming(clients) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 12, 30, "acks before the kill")
        # Frozen first, so that its clients certainly have a send it never
        # answers when it dies; the other worker's clients stream on meanwhile.
        doomed.process.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        await until(
            lambda: time.monotonic() - frozen_at > 0.5 and all(c.pending for c in clients[1::2]),
            10,
            "sends in flight to the frozen worker",
        )
        await asyncio.to_thread(doomed.kill, signal.SIGKILL)
        await sending
        await converge(clients, total=48)

    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )
    for client in clients[1::2]:
        # Cut off without a close frame, then back on the survivor with after=,
        # where the send left unanswered was resent with its client_id.
        assert client.closes[:1] == [ABNORMAL_CLOSURE], client.closes
        assert client.connections >= 2
        cut = [a.client_id for a in client.answers if a.outcome == "closed"]
        assert cut and all(client_id in client.acks for client_id in cut), client.answers
    for client in clients[0::2]:
        # The survivor's own sockets never noticed.
        assert (client.connections, client.closes) == (1, [])
    assert_no_crash(cluster.workers[:1], pids[:1])


# --- Redis down, then back ------------------------------------------------------


async def test_redis_outage_mid_stream_answers_every_send_and_recovers(
    private_redis, cluster_factory, database_url, room
):
    cluster = cluster_factory(2, REDIS_URL=private_redis.url, **GENEROUS)
    pids = pids_of(cluster)
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2, 1 - i % 2], count=15)
        for i in range(4, 8)
    ]
    async with streaming(clients, timeout=75) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 12, 30, "acks before the outage")
        await asyncio.to_thread(private_redis.stop)
        down_at = time.monotonic()
        for worker in cluster.workers:
            status, report = await asyncio.to_thread(healthz, worker)
            assert (status, report["status"], report["db"], report["redis"]) == (
                503,
                "unavailable",
                "ok",
                "error",
            ), report

        def met_the_outage(client: Streamer) -> bool:
            refused = any(
                answer.sent_at >= down_at for answer in client.answers if answer.outcome != "ack"
            )
            return refused or any(at >= down_at for at in client.closed_at)

        # Down until every client has run into it, and at least two seconds.
        await until(lambda: all(map(met_the_outage, clients)), 20, "every client to meet it")
        await asyncio.sleep(max(0.0, down_at + 2 - time.monotonic()))
        await asyncio.to_thread(private_redis.start)
        for worker in cluster.workers:
            status, report = await asyncio.to_thread(healthz, worker)
            assert (status, report) == (200, {"status": "ok", "db": "ok", "redis": "ok"})
        await sending
        await converge(clients, total=60)

        # Broadcasts work again on the same workers: one more message reaches
        # every client live, on the socket it already has.
        sockets = [client.connections for client in clients]
        clients[0].plan.append("final")
        await clients[0].send_all(["final"])
        await converge(clients, total=61)
        assert [client.connections for client in clients] == sockets

    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )
    for client in clients:
        # Every send was answered: acknowledged, refused as unavailable, or
        # closed with a code that says why (never silence, never a 1011).
        outcomes = {(a.outcome, a.value) for a in client.answers if a.outcome != "ack"}
        assert outcomes <= {("unavailable", None), *(("closed", c) for c in FAULT_CLOSE_CODES)}
        assert set(client.closes) <= FAULT_CLOSE_CODES, client.closes
        # The outage closed its socket (4012, its broadcasts were lost); it resumed.
        assert client.closes[:1] == [4012] and client.connections >= 2, client.closes
    assert_no_crash(cluster.workers, pids)


async def test_a_socket_opened_while_redis_is_down_is_refused_with_4013(
    private_redis, cluster_factory, room
):
    cluster = cluster_factory(1, REDIS_URL=private_redis.url, **GENEROUS)
    worker = cluster.workers[0]
    pids = pids_of(cluster)
    token = await asyncio.to_thread(cluster.token, "user08")
    # An open socket fills the worker's Redis pools before the outage.
    before = Client("user08", await open_socket(worker, room, token))
    assert (await before.receive())["type"] == "welcome"

    await asyncio.to_thread(private_redis.stop)
    # The open socket is told that its broadcasts are gone, not left deaf.
    assert await close_code(before.connection) == 4012
    status, report = await asyncio.to_thread(healthz, worker)
    assert (status, report["db"], report["redis"]) == (503, "ok", "error"), report
    # Accepted (no HTTP error at the handshake), then closed with "try again later".
    refused = await open_socket(worker, room, token, after=0)
    assert await close_code(refused) == 4013

    await asyncio.to_thread(private_redis.start)
    # The very first socket after the return works: no stale pooled connection.
    first = Client("user08", await open_socket(worker, room, token))
    welcome = await first.receive()
    assert (welcome["type"], welcome["last_id"]) == ("welcome", None)
    other = await cluster.connect("user09", worker=0, room=room)
    await first.send({"type": "message.send", "body": "back", "client_id": "back-1"})
    ack = await first.receive_type("message")
    assert (ack["id"], ack["client_id"]) == (1, "back-1")
    seen = await other.receive_type("message")
    assert (seen["id"], seen["body"], seen["client_id"]) == (1, "back", None)
    assert await asyncio.to_thread(healthz, worker) == (
        200,
        {"status": "ok", "db": "ok", "redis": "ok"},
    )
    assert_no_crash(cluster.workers, pids)


# --- the database down, then slow -----------------------------------------------


async def test_database_down_answers_unavailable_and_stores_nothing(
    database_proxy, cluster_factory, database_url, room
):
    cluster = cluster_factory(2, DATABASE_URL=database_proxy.url(database_url), **GENEROUS)
    pids = pids_of(cluster)
    sender = await cluster.connect("user10", worker=0, room=room)
    listener = await cluster.connect("user11", worker=1, room=room)
    token = await asyncio.to_thread(cluster.token, "user12")
    await sender.send({"type": "message.send", "body": "before", "client_id": "before"})
    assert (await sender.receive_type("message"))["id"] == 1
    assert (await listener.receive_type("message"))["id"] == 1

    await asyncio.to_thread(database_proxy.down)
    for client_id in ["down-1", "down-2", "down-3"]:
        await sender.send({"type": "message.send", "body": client_id, "client_id": client_id})
        error = await sender.receive_type("error")
        assert (error["code"], error["client_id"]) == ("unavailable", client_id), error
    # The socket stays open and served.
    await sender.send({"type": "ping"})
    assert await sender.receive_type("pong") == {"type": "pong"}
    status, report = await asyncio.to_thread(healthz, cluster.workers[0])
    assert (status, report["status"], report["db"], report["redis"]) == (
        503,
        "unavailable",
        "error",
        "ok",
    ), report
    # A new socket cannot be authenticated now: accepted, then "try again later".
    refused = await open_socket(cluster.workers[1], room, token)
    assert await close_code(refused) == 4013
    # Nothing half-stored: no row now, and no number used up (the resends get 2, 3, 4).
    assert [row[3] for row in await asyncio.to_thread(stored, database_url, room)] == ["before"]

    await asyncio.to_thread(database_proxy.up)
    for number, client_id in enumerate(["down-1", "down-2", "down-3"], start=2):
        await sender.send({"type": "message.send", "body": client_id, "client_id": client_id})
        ack = await sender.receive_type("message")
        assert (ack["id"], ack["client_id"], ack["body"]) == (number, client_id, client_id)
        seen = await listener.receive_type("message")
        assert (seen["id"], seen["body"], seen["client_id"]) == (number, client_id, None)
    # A further resend is the stored message again, to the sender only.
    await sender.send({"type": "message.send", "body": "down-1", "client_id": "down-1"})
    assert (await sender.receive_type("message"))["id"] == 2
    await sender.send({"type": "message.send", "body": "after", "client_id": "after"})
    assert (await sender.receive_type("message"))["id"] == 5
    assert (await listener.receive_type("message"))["id"] == 5
    newcomer = Client("user12", await open_socket(cluster.workers[1], room, token, after=0))
    assert (await newcomer.receive())["last_id"] == 5
    assert [(await newcomer.receive_type("message"))["id"] for _ in range(5)] == [1, 2, 3, 4, 5]

    assert [row[:1] + row[2:] for row in await asyncio.to_thread(stored, database_url, room)] == [
        (1, "before", "before"),
        (2, "down-1", "down-1"),
        (3, "down-2", "down-2"),
        (4, "down-3", "down-3"),
        (5, "after", "after"),
    ]
    for worker in cluster.workers:
        assert await asyncio.to_thread(healthz, worker) == (
            200,
            {"status": "ok", "db": "ok", "redis": "ok"},
        )
    assert_no_crash(cluster.workers, pids)
    # An outage answered by design is told once per worker, and its end with a count:
    # no ERROR, no traceback for each refused frame.
    log = cluster.workers[0].log()
    assert log.count("database unavailable, answering unavailable") == 1, log[-3000:]
    assert "3 answers were unavailable meanwhile" in log
    assert " ERROR " not in log and "Traceback" not in log


async def test_a_slow_database_delays_acknowledgements_but_keeps_their_order(
    database_proxy, cluster_factory, database_url, room
):
    cluster = cluster_factory(2, DATABASE_URL=database_proxy.url(database_url), **GENEROUS)
    pids = pids_of(cluster)
    clients = [
        Streamer(cluster, f"user{i:02d}", room, workers=[i % 2], count=9, window=3)
        for i in range(13, 16)
    ]
    delay = 0.02
    async with streaming(clients) as sending:
        await until(lambda: sum(len(c.acks) for c in clients) >= 3, 30, "acks before the slowdown")
        await asyncio.to_thread(database_proxy.slow, delay)
        slow_from = time.monotonic()

        def slowed(client: Streamer) -> list[Answer]:
            return [answer for answer in client.answers if answer.sent_at >= slow_from]

        await until(lambda: all(len(slowed(c)) >= 3 for c in clients), 30, "sends while slow")
        slow_answers = [answer for client in clients for answer in slowed(client)]
        await asyncio.to_thread(database_proxy.up)
        await sending
        await converge(clients, total=27)

    assert_everyone_has_exactly_what_is_stored(
        clients, await asyncio.to_thread(stored, database_url, room)
    )
    for client in clients:
        # Later, never refused: no error, no close, one attempt per message.
        assert {answer.outcome for answer in client.answers} == {"ack"}
        assert (client.connections, client.closes) == (1, [])
        # Three sends in flight at a time, acknowledged in the order they were sent.
        assert [client_id for client_id, _ in client.ack_order] == client.plan
        numbers = [number for _, number in client.ack_order]
        assert numbers == sorted(numbers)
    # Each slowed send waited at least one delayed round trip to the database.
    assert min(a.answered_at - a.sent_at for a in slow_answers) >= 2 * delay
    assert_no_crash(cluster.workers, pids)


async def test_an_unexpected_exception_closes_4011_and_never_reaches_daphne(cluster_factory, room):
    """A bug in a handler: the socket closes with 4011 (reconnect), logged once, daphne unharmed.

    daphne refuses the standard 1011 from an application: it raised inside
    daphne ("Exception inside application") and the client got no close code.
    """
    cluster = cluster_factory(1, application="tests.integration.faulty_asgi:application")
    client = await cluster.connect("user00", 0, room)
    await client.send({"type": "typing"})
    with pytest.raises(websockets.ConnectionClosed):
        await client.receive(timeout=10)
    assert client.connection.close_code == 4011

    log = cluster.workers[0].log()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "closing the socket with 4011" in errors[0], errors
    assert "Traceback" in log and "RuntimeError: a fault planted by the test" in log
    assert "Exception inside application" not in log

    # The client does what 4011 asks: it reconnects and goes on.
    again = await cluster.connect("user00", 0, room, after=0)
    await again.send({"type": "message.send", "body": "still here", "client_id": "c-1"})
    ack = await again.receive_type("message")
    assert (ack["id"], ack["client_id"]) == (1, "c-1")
    await again.close()
