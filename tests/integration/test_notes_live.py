"""Shared notes with real daphne workers, Redis and PostgreSQL: convergence and faults.

The clients are pycrdt documents speaking y-protocols over `websockets`, as
any Yjs client does: on a close they reconnect and run the handshake again,
which sends the server what it lacks and brings back what they missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import websockets
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GENEROUS = {"CHAT_RATE_LIMIT": "10000/10s", "CHAT_NOTES_RATE_LIMIT": "10000/1s"}
ACKED = 100


def stored_text(database_url: str, slug: str) -> str:
    """The room's notes as the database holds them (snapshot plus updates)."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT d.snapshot, d.snapshot_number, r.id FROM chat_room r"
            " LEFT JOIN chat_notesdocument d ON d.room_id = r.id WHERE r.slug = %s",
            (slug,),
        ).fetchone()
        assert row is not None
        snapshot, after, room_id = row
        updates = connection.execute(
            "SELECT data FROM chat_notesupdate WHERE room_id = %s AND number > %s ORDER BY number",
            (room_id, after or 0),
        ).fetchall()
    doc: Doc = Doc()
    text = doc.get("notes", type=Text)
    if snapshot:
        doc.apply_update(bytes(snapshot))
    for (data,) in updates:
        doc.apply_update(bytes(data))
    return str(text)


class Editor:
    """A pycrdt document bound to a notes socket, reconnecting on any close."""

    def __init__(self, cluster: Cluster, username: str, slug: str) -> None:
        self.cluster = cluster
        self.username = username
        self.slug = slug
        self.doc: Doc = Doc()
        self.text = self.doc.get("notes", type=Text)
        self.ws: Any = None
        self.sent = 0  # update messages sent on this socket
        self.acked = 0
        self.reader: asyncio.Task[None] | None = None
        self.closes: list[int] = []

    async def open(self, worker: int) -> None:
        token = await asyncio.to_thread(self.cluster.token, self.username, worker)
        base = self.cluster.workers[worker].url.replace("http", "ws", 1)
        self.ws = await websockets.connect(
            f"{base}/ws/rooms/{self.slug}/notes/?token={token}&acks=1"
        )
        self.sent = self.acked = 0
        await self.ws.send(create_sync_message(self.doc))
        self.reader = asyncio.ensure_future(self.read(self.ws))

    async def read(self, ws: Any) -> None:
        try:
            async for message in ws:
                if message[0] == YMessageType.SYNC:
                    reply = handle_sync_message(message[1:], self.doc)
                    if reply is not None:
                        self.sent += 1
                        await ws.send(reply)
                elif message[0] == ACKED:
                    self.acked = varuint(message[1:])
        except websockets.ConnectionClosed:
            pass
        code = ws.close_code
        self.closes.append(code if code is not None else 1006)

    async def edit(self, words: str) -> None:
        before = self.doc.get_state()
        self.text += words
        self.sent += 1
        await self.ws.send(create_update_message(self.doc.get_update(before)))

    async def saved(self, timeout: float = 15) -> None:
        await until(lambda: self.acked >= self.sent, timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


async def until(condition: Any, timeout: float) -> None:
    """Wait for `condition()`, which the editors' readers make true."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"still not so after {timeout} s")


def varuint(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return value


async def converged(editors: list[Editor], timeout: float = 15) -> str:
    await until(lambda: len({str(editor.text) for editor in editors}) == 1, timeout)
    return str(editors[0].text)


async def test_the_readmes_ten_lines_run(cluster, room, database_url):
    source = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", source.split("## Edit a room's notes")[1], re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code[1], namespace)
    token = await asyncio.to_thread(cluster.token, "user00")
    url = cluster.workers[0].url.replace("http", "ws", 1)
    url += f"/ws/rooms/{room}/notes/?token={token}&acks=1"
    assert await namespace["notes_append"](url, "first line\n") == "first line\n"
    assert await namespace["notes_append"](url, "second\n") == "first line\nsecond\n"
    assert stored_text(database_url, room) == "first line\nsecond\n"


async def test_two_people_on_two_workers_converge_and_survive_a_restart_of_all(
    cluster_factory, room, database_url
):
    cluster = cluster_factory(2, **GENEROUS)
    ann, ben = Editor(cluster, "user01", room), Editor(cluster, "user02", room)
    await ann.open(0)
    await ben.open(1)
    for index in range(30):
        await ann.edit(f"a{index} ")
        await ben.edit(f"b{index} ")
    await ann.saved()
    await ben.saved()
    text = await converged([ann, ben])
    assert all(f"a{i} " in text and f"b{i} " in text for i in range(30))
    assert stored_text(database_url, room) == text
    await ann.close()
    await ben.close()
    for worker in cluster.workers:
        worker.kill(signal.SIGTERM)
        worker.start()
    fresh = Editor(cluster, "user03", room)
    await fresh.open(1)
    await until(lambda: str(fresh.text) == text, 10)
    await fresh.close()


async def test_a_worker_killed_mid_edit_loses_nothing_acknowledged(
    cluster_factory, room, database_url
):
    cluster = cluster_factory(2, **GENEROUS)
    ann, ben = Editor(cluster, "user04", room), Editor(cluster, "user05", room)
    await ann.open(0)
    await ben.open(1)
    # Each word, and how many updates the socket had sent once it was typed: the word
    # is acknowledged once the worker has acknowledged that many.
    typed: list[tuple[str, int]] = []

    async def type_on_ben() -> None:
        for index in range(400):
            word = f"b{index} "
            try:
                await ben.edit(word)
            except websockets.ConnectionClosed:
                return
            typed.append((word, ben.sent))
            await asyncio.sleep(0.01)

    typing = asyncio.ensure_future(type_on_ben())
    # Killed mid-edit, once some words are acknowledged, however slow the machine is (the
    # socket's own sync reply counts among the updates sent, and is acknowledged first).
    await until(lambda: bool(typed) and ben.acked >= typed[0][1], 20)
    cluster.workers[1].kill(signal.SIGKILL)
    await typing
    acknowledged = [word for word, sent in typed if sent <= ben.acked]
    assert acknowledged, "nothing was acknowledged before the kill"
    stored = stored_text(database_url, ben.slug)
    assert all(word in stored for word in acknowledged)
    # Ben reconnects to the surviving worker: his unsaved words arrive too.
    await ben.reader  # type: ignore[misc]
    await ben.open(0)
    await ben.saved()
    text = await converged([ann, ben])
    assert text == str(ben.text) and stored_text(database_url, room) == text
    await ann.close()
    await ben.close()


async def test_redis_stopped_for_three_seconds_then_back(
    private_redis, cluster_factory, room, database_url
):
    cluster = cluster_factory(2, REDIS_URL=private_redis.url, **GENEROUS)
    ann, ben = Editor(cluster, "user06", room), Editor(cluster, "user07", room)
    await ann.open(0)
    await ben.open(1)
    await ann.edit("before ")
    await converged([ann, ben])
    await asyncio.to_thread(private_redis.stop)
    with contextlib.suppress(websockets.ConnectionClosed):
        await ann.edit("during ")
    await asyncio.sleep(3)
    await asyncio.to_thread(private_redis.start)
    # The watcher closes the sockets (4012); the clients reconnect and sync again.
    for editor, worker in ((ann, 0), (ben, 1)):
        async with asyncio.timeout(20):
            await editor.reader  # type: ignore[misc]
        for _ in range(100):
            try:
                await editor.open(worker)
                break
            except (OSError, websockets.InvalidStatus):
                await asyncio.sleep(0.2)
    await ann.edit("after ")
    await ben.edit("again ")
    await ann.saved()
    await ben.saved()
    text = await converged([ann, ben], timeout=20)
    assert {"before ", "during ", "after ", "again "} <= set(re.findall(r"\w+ ", text))
    assert stored_text(database_url, room) == text
    assert ann.closes and ben.closes
    await ann.close()
    await ben.close()
