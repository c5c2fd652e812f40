"""Two daphne workers, one Redis layer, one PostgreSQL database."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.integration


async def test_broadcast_reaches_the_other_worker(cluster, room):
    alice = await cluster.connect("user00", worker=0, room=room)
    bob = await cluster.connect("user01", worker=1, room=room)
    await alice.send({"type": "message.send", "body": "across", "client_id": "x1"})
    ack = await alice.receive_type("message")
    seen = await bob.receive_type("message")
    assert ack["id"] == seen["id"] == 1
    assert (ack["client_id"], seen["client_id"]) == ("x1", None)
    assert seen["body"] == "across" and seen["user"] == "user00"


async def test_concurrent_senders_on_both_workers_see_one_order(cluster, room):
    senders = [
        await cluster.connect(f"user{index:02d}", worker=index % 2, room=room) for index in range(6)
    ]
    listeners = [await cluster.connect("user10", worker=w, room=room) for w in (0, 1)]
    per_sender = 15

    async def burst(client, index):
        for n in range(per_sender):
            frame = {"type": "message.send", "body": f"{index}-{n}", "client_id": f"{index}-{n}"}
            await client.send(frame)

    await asyncio.gather(*(burst(client, index) for index, client in enumerate(senders)))
    total = per_sender * len(senders)
    sequences = []
    for client in senders + listeners:
        ids = [(await client.receive_type("message"))["id"] for _ in range(total)]
        sequences.append(ids)
    assert all(ids == list(range(1, total + 1)) for ids in sequences), sequences


async def test_resend_on_the_other_worker_is_stored_once(cluster, room):
    first = await cluster.connect("user02", worker=0, room=room)
    await first.send({"type": "message.send", "body": "once", "client_id": "same"})
    original = await first.receive_type("message")
    await first.close()
    again = await cluster.connect("user02", worker=1, room=room, after=0)
    replayed = await again.receive_type("message")
    assert replayed["id"] == original["id"]
    await again.send({"type": "message.send", "body": "once", "client_id": "same"})
    resent = await again.receive_type("message")
    assert resent["id"] == original["id"] and resent["client_id"] == "same"
    other = await cluster.connect("user03", worker=0, room=room, after=0)
    stored = await other.receive_type("message")
    assert stored["id"] == original["id"]
    assert other.welcome["last_id"] == original["id"]


async def test_typing_crosses_workers_and_is_throttled_per_user(cluster, room):
    listener = await cluster.connect("user11", worker=1, room=room)
    typist = await cluster.connect("user12", worker=0, room=room)
    typist_elsewhere = await cluster.connect("user12", worker=1, room=room)
    await typist.send({"type": "typing"})
    frame = await listener.receive()
    while frame["type"] == "presence":
        frame = await listener.receive()
    assert frame == {"type": "typing", "user": "user12"}
    # The same user on the other worker within 2 s: throttled across workers.
    await typist_elsewhere.send({"type": "typing"})
    await typist_elsewhere.send({"type": "message.send", "body": "done typing"})
    frame = await listener.receive()
    while frame["type"] == "presence":
        frame = await listener.receive()
    assert frame["type"] == "message" and frame["body"] == "done typing", frame
    await asyncio.sleep(2.1)
    await typist_elsewhere.send({"type": "typing"})
    assert await listener.receive_type("typing") == {"type": "typing", "user": "user12"}
