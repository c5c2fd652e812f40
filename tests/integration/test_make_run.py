"""The newcomer's path: `make run` with nothing set, used as two people and an admin would.

`deploy/run.sh` under supervisord in a clean copy of the tree: SQLite, a private
Redis and two daphne workers sharing one port (tests/integration/make_run.py).
Two people sign up through the forms, get tokens, and chat over sockets held
by the two different workers; the admin archives a room. The run's log must
hold no ERROR and no Traceback.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
import websockets

from tests.integration.make_run import MakeRun, Visitor

pytestmark = pytest.mark.integration

PASSWORD = "newcomer-Pass-2026"


@dataclass
class Person:
    username: str
    web: Visitor
    token: str


@dataclass
class Socket:
    connection: Any
    worker: int
    welcome: dict[str, Any]

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        assert isinstance(frame, dict)
        return frame

    async def next_of(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame but `typing` and `presence`, which must be of type `kind`."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] not in {"typing", "presence"}:
                assert frame["type"] == kind, frame
                return frame

    async def presence(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == "presence":
                return frame
            assert frame["type"] == "typing", frame


def sign_up(run: MakeRun, username: str) -> Person:
    """Through the sign-up form, then a token from /api/token/ for the socket."""
    web = Visitor(run.url)
    status, page, url = web.form(
        "/accounts/signup/",
        {"username": username, "password1": PASSWORD, "password2": PASSWORD},
    )
    # Signed in and on the lobby, which lists the rooms of a fresh install.
    assert (status, url) == (200, run.url + "/"), page[:500]
    assert {room["slug"] for room in web.get_json("/api/rooms/")["rooms"]} >= {"general", "random"}
    status, answer = web.post_json("/api/token/", {"username": username, "password": PASSWORD})
    assert status == 200, answer
    return Person(username=username, web=web, token=answer["token"])


async def open_socket(run: MakeRun, person: Person, room: str, *, not_on: int = 0) -> Socket:
    """A socket through the shared port; with `not_on`, one the other worker holds."""
    url = run.url.replace("http", "ws", 1) + f"/ws/rooms/{room}/?token={person.token}"
    for _ in range(40):
        connection = await websockets.connect(url)
        worker = run.worker_of(connection.local_address[1])
        if worker != not_on:
            welcome = json.loads(await asyncio.wait_for(connection.recv(), 10))
            assert welcome["type"] == "welcome", welcome
            return Socket(connection=connection, worker=worker, welcome=welcome)
        await connection.close()
    raise AssertionError("40 connections in a row went to the same worker")


async def messages_of(socket: Socket, count: int) -> list[dict[str, Any]]:
    return [await socket.next_of("message") for _ in range(count)]


def assert_clean(run: MakeRun) -> None:
    assert run.problems() == [], "\n".join(run.problems())


async def test_two_newcomers_chat_on_both_workers_of_make_run(make_run: MakeRun):
    run = make_run
    assert len(run.worker_pids()) == 2
    ann, ben = sign_up(run, "ann"), sign_up(run, "ben")

    a = await open_socket(run, ann, "general")
    b = await open_socket(run, ben, "general", not_on=a.worker)
    assert a.worker != b.worker and {a.worker, b.worker} == set(run.worker_pids())
    assert a.welcome["user"] == {"username": "ann"} and a.welcome["last_id"] is None
    # Presence crosses the workers: each sees the other online.
    assert sorted(b.welcome["online"]) == ["ann", "ben"]
    assert (await a.presence())["joined"] == ["ben"]

    # Both write at once, each through their own worker, into one SQLite file:
    # each socket sees every message once, numbered 1..24 without a hole.
    count = 12
    await asyncio.gather(
        *(
            socket.send({"type": "message.send", "body": f"{who} {i}", "client_id": f"{who}-{i}"})
            for i in range(count)
            for who, socket in (("ann", a), ("ben", b))
        )
    )
    for socket, me in ((a, "ann"), (b, "ben")):
        frames = await messages_of(socket, 2 * count)
        assert [frame["id"] for frame in frames] == list(range(1, 2 * count + 1))
        for frame in frames:
            mine = frame["user"] == me
            assert frame["client_id"] == (f"{frame['body'].replace(' ', '-')}" if mine else None)
        assert [f["body"] for f in frames if f["user"] == me] == [f"{me} {i}" for i in range(count)]
    stored = run.query(
        "SELECT m.number, u.username, m.body FROM chat_message m"
        " JOIN chat_room r ON r.id = m.room_id JOIN auth_user u ON u.id = m.author_id"
        " WHERE r.slug = 'general' ORDER BY m.number"
    )
    assert [number for number, _, _ in stored] == list(range(1, 2 * count + 1))
    ann_3 = next(number for number, user, body in stored if body == "ann 3")

    # A resend is answered with the stored message, on that socket only.
    await a.send({"type": "message.send", "body": "ann 3", "client_id": "ann-3"})
    again = await a.next_of("message")
    assert (again["id"], again["client_id"]) == (ann_3, "ann-3")

    # Edit and delete reach both workers, next after everything else. They are
    # sent one after the other: two workers give no order between two authors.
    await a.send({"type": "message.edit", "id": ann_3, "body": "ann 3, edited"})
    for socket in (a, b):
        edited = await socket.next_of("message.edited")
        assert (edited["id"], edited["body"]) == (ann_3, "ann 3, edited")
    ben_last = next(number for number, user, _ in reversed(stored) if user == "ben")
    await b.send({"type": "message.delete", "id": ben_last})
    for socket in (a, b):
        assert (await socket.next_of("message.deleted"))["id"] == ben_last

    # Read state: ben has read everything; ann has read nothing of ben's.
    await b.send({"type": "read", "id": 2 * count})
    await b.send({"type": "ping"})
    await b.next_of("pong")

    def unread(person: Person) -> int:
        rooms = person.web.get_json("/api/rooms/")["rooms"]
        return next(room["unread"] for room in rooms if room["slug"] == "general")

    assert unread(ben) == 0
    assert unread(ann) == count - 1  # ben's messages but the deleted one

    # Leaving is seen on the other worker.
    await b.connection.close()
    assert (await a.presence())["left"] == ["ben"]
    await a.connection.close()
    assert_clean(run)


async def test_the_admin_of_make_run_archives_a_room_live_on_both_workers(make_run: MakeRun):
    run = make_run
    # As the README says, with nothing set: manage.py finds the run's secret.
    run.manage(
        "createsuperuser",
        "--noinput",
        "--username=root",
        "--email=root@example.com",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    admin = Visitor(run.url)
    status, page, url = admin.form(
        "/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD, "next": "/admin/"}
    )
    assert (status, url) == (200, run.url + "/admin/"), page[:500]

    cat, dan = sign_up(run, "cat"), sign_up(run, "dan")
    c = await open_socket(run, cat, "random")
    d = await open_socket(run, dan, "random", not_on=c.worker)
    [(room_id,)] = run.query("SELECT id FROM chat_room WHERE slug = 'random'")
    status, page, _ = admin.form(
        "/admin/chat/room/",
        {"action": "archive", "_selected_action": str(room_id), "index": "0", "select_across": "0"},
    )
    assert status == 200 and "1 room(s) archived." in page

    for socket in (c, d):
        frame = await socket.next_of("room")
        assert frame["room"]["slug"] == "random" and frame["room"]["archived"] is True
    await c.send({"type": "message.send", "body": "too late", "client_id": "late-1"})
    refused = await c.next_of("error")
    assert (refused["code"], refused["client_id"]) == ("room_archived", "late-1")
    assert run.query(
        "SELECT count(*) FROM chat_message m JOIN chat_room r ON r.id = m.room_id"
        " WHERE r.slug = 'random'"
    ) == [(0,)]
    await c.connection.close()
    await d.connection.close()
    assert_clean(run)


def test_make_run_cleans_up_uploads_never_attached(make_run: MakeRun):
    """supervisord runs the hourly cleanup beside the workers (deploy/supervisord.conf)."""
    deadline = time.monotonic() + 30
    while "upload(s) not attached within 1 day" not in make_run.log():
        assert time.monotonic() < deadline, make_run.log()[-3000:]
        time.sleep(0.2)
    assert_clean(make_run)
