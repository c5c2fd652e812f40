"""One order on every socket (docs/reliability.md): a message that arrives ahead of its
predecessors waits for them, and holes are filled from the database.

On the whole ASGI stack, as tests/consumer_helpers.py tells.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings

from chat.domain import events, writes
from chat.models import Message
from chat.sockets import room as room_socket
from tests.consumer_helpers import create, delete, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("generous_rate_limit", "frames_without_presence"),
]


# --- hole filling --------------------------------------------------------------


@pytest.mark.redis
async def test_a_message_ahead_of_its_predecessors_is_preceded_by_them(
    connect, alice, bob, general
):
    a, welcome = await connect(alice)
    assert welcome["last_id"] is None
    # Stored, never broadcast: as if two workers committed and one broadcast was lost.
    await create(general, bob, "one")
    two = await create(general, bob, "two")
    three = await create(general, alice, "three", client_id="c3")
    layer = get_channel_layer()
    await layer.group_send(general.group_name, events.chat_message(three))
    frames = [await a.receive_type("message") for _ in range(3)]
    assert [(m["id"], m["body"], m["client_id"]) for m in frames] == [
        (1, "one", None),
        (2, "two", None),
        (3, "three", "c3"),
    ]
    # The late broadcast of 2 is dropped: no duplicate.
    await layer.group_send(general.group_name, events.chat_message(two))
    assert await a.nothing()
    await sync(a)


@pytest.mark.redis
async def test_a_message_ahead_is_held_for_the_broadcast_behind_it(
    connect, alice, bob, general, monkeypatch
):
    """Another worker's broadcast a moment late: both go out in order, nothing is read."""
    a, _ = await connect(alice)
    one = await create(general, bob, "one")
    two = await create(general, bob, "two")
    reads: list[tuple[int, int]] = []
    real = room_socket.messages_missing

    async def counted(*, room_id: int, after: int, before: int) -> list[Message]:
        reads.append((after, before))
        return await real(room_id=room_id, after=after, before=before)

    monkeypatch.setattr(room_socket, "messages_missing", counted)
    layer = get_channel_layer()
    await layer.group_send(general.group_name, events.chat_message(two))
    await asyncio.sleep(django_settings.CHAT_HOLE_WAIT / 4)
    await layer.group_send(general.group_name, events.chat_message(one))
    assert [(await a.receive_type("message"))["id"] for _ in range(2)] == [1, 2]
    assert reads == []
    # Nothing more later, when the wait would have run out.
    assert await a.nothing(timeout=django_settings.CHAT_HOLE_WAIT * 2)


@pytest.mark.redis
async def test_a_hole_that_outlives_the_wait_is_read_from_the_database(
    connect, alice, bob, general
):
    a, _ = await connect(alice)
    await create(general, bob, "one")
    await create(general, bob, "two")
    three = await create(general, bob, "three")
    four = await create(general, bob, "four")
    layer = get_channel_layer()
    started = time.monotonic()
    await layer.group_send(general.group_name, events.chat_message(three))
    await layer.group_send(general.group_name, events.chat_message(four))
    assert [(await a.receive_type("message"))["id"] for _ in range(4)] == [1, 2, 3, 4]
    assert time.monotonic() - started >= django_settings.CHAT_HOLE_WAIT
    assert await a.nothing()


@pytest.mark.redis
async def test_an_edit_of_a_held_message_follows_the_message(connect, alice, bob, general):
    a, _ = await connect(alice)
    one = await create(general, bob, "one")
    two = await create(general, bob, "two")
    layer = get_channel_layer()
    await layer.group_send(general.group_name, events.chat_message(two))
    edited = await database_sync_to_async(writes.message_edit)(
        room_id=general.pk, number=2, user=bob, body="two, edited"
    )
    event = events.chat_message_edited(
        edited.message, mentions=edited.mentions, mentions_changed=edited.mentions_changed
    )
    await layer.group_send(general.group_name, event)
    frames = [await a.receive() for _ in range(3)]
    assert [(f["type"], f["id"], f["body"]) for f in frames] == [
        ("message", 1, "one"),
        ("message", 2, "two, edited"),
        ("message.edited", 2, "two, edited"),
    ]
    # The late broadcast of 1 adds nothing.
    await layer.group_send(general.group_name, events.chat_message(one))
    assert await a.nothing()


@pytest.mark.redis
async def test_hole_filling_leaves_deleted_messages_out(connect, alice, bob, general):
    a, _ = await connect(alice)
    await create(general, bob, "one")
    await create(general, bob, "two")
    three = await create(general, bob, "three")
    await delete(general, 2, bob)
    await get_channel_layer().group_send(general.group_name, events.chat_message(three))
    assert [(await a.receive_type("message"))["id"] for _ in range(2)] == [1, 3]
    assert await a.nothing()


@pytest.mark.redis
async def test_a_lost_last_message_arrives_by_the_tail_check(connect, alice, bob, general):
    """No later message shows the hole: the watcher's look at the room catches it up."""
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    # Stored, never broadcast: as if the layer dropped the last message of a burst.
    await create(general, bob, "one")
    await create(general, bob, "two", client_id="c2")
    # Within two of the watcher's intervals (CHAT_LAYER_CHECK_INTERVAL, 2 s) and a margin:
    # the check catches up to what the room had at the check before.
    assert [(await a.receive_type("message", timeout=8))["id"] for _ in range(2)] == [1, 2]
    frames = [await b.receive_type("message", timeout=8) for _ in range(2)]
    assert [(m["id"], m["client_id"]) for m in frames] == [(1, None), (2, "c2")]
    # And the late broadcast adds nothing.
    await get_channel_layer().group_send(
        general.group_name,
        events.chat_message(await database_sync_to_async(Message.objects.for_wire().get)(number=2)),
    )
    assert await a.nothing() and await b.nothing()
