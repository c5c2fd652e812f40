"""A worker's feed of a broadcast room, against real Redis and the real database.

The feed puts the room's messages in order once for the worker's sockets,
hands them out a tick at a time as one `chat.messages` event, and reads a
hole from the database once, skipping what was deleted (chat/sockets/feeds.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from channels.db import database_sync_to_async

from chat.domain import events
from chat.domain.writes import message_delete
from chat.models import Message, Room
from chat.platform.layers import Inbox
from chat.platform.redis import keys
from chat.sockets.feeds import FeedHub
from tests.helpers import send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


class Member:
    """A socket as a feed sees it: takes batches straight away, or wants them in its inbox."""

    def __init__(self, *, takes: bool = True, watches: bool = True) -> None:
        self.inbox = Inbox()
        self.watches = watches
        self.takes = takes
        self.batches: list[dict[str, Any]] = []
        self.took = asyncio.Event()

    def take_batch(self, batch: dict[str, Any]) -> bool:
        if self.takes:
            self.batches.append(batch)
            self.took.set()
        return self.takes

    async def until(self, condition: Callable[[Member], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition(self):
                self.took.clear()
                await self.took.wait()

    async def until_ids(self, ids: list[int]) -> None:
        await self.until(lambda member: member.ids() == ids)

    def ids(self) -> list[int]:
        return [event["id"] for batch in self.batches for event in batch["events"]]


@pytest.fixture
def layer(make_layer):
    return make_layer(capacity=100)


@pytest.fixture
def room(db, alice) -> Room:
    room = Room.objects.create(name="Scores", slug="scores", kind=Room.Kind.BROADCAST)
    alice.is_staff = True  # staff publish in broadcast rooms
    alice.save()
    for n in range(1, 6):
        send(room, alice, f"update {n}")
    return room


@database_sync_to_async
def message_events(room: Room) -> dict[int, dict[str, Any]]:
    stored = Message.objects.filter(room=room).for_wire()
    return {message.number: events.chat_message(message) for message in stored}


async def fed(layer, room, *members: Member) -> tuple[FeedHub, dict[int, dict[str, Any]]]:
    """A worker's feed of the room with `members` in it, message 1 on its way to them."""
    hub = FeedHub(layer)
    for member in members:
        await hub.join("room-scores", member, batched=True)
    stored = await message_events(room)
    await layer.group_send("room-scores", stored[1])
    return hub, stored


@pytest.fixture
def quick(settings):
    settings.CHAT_BATCH_TICK = 0.2
    settings.CHAT_HOLE_WAIT = 0.3
    return settings


async def test_messages_that_arrive_out_of_order_go_out_as_one_ordered_frame(layer, room, quick):
    member = Member()
    hub, stored = await fed(layer, room, member)
    await member.until_ids([1])
    # Within the tick that follows, 2..4 arrive out of order.
    for number in (3, 2, 4):
        await layer.group_send("room-scores", stored[number])
    await member.until(lambda m: len(m.batches) == 2)
    batch = member.batches[1]
    assert (batch["first"], batch["last"]) == (2, 4)
    assert member.ids() == [1, 2, 3, 4]
    assert batch["authors"] == [stored[2]["author_id"]]
    # Built of what the channel layer could carry (msgpack), though it stays in the worker.
    assert msgpack.unpackb(msgpack.packb(batch))["authors"] == batch["authors"]
    frame = json.loads(batch["text"])
    assert frame["type"] == "messages"
    assert [(m["id"], m["body"]) for m in frame["messages"]] == [
        (2, "update 2"),
        (3, "update 3"),
        (4, "update 4"),
    ]
    await hub.leave("room-scores", member)


async def test_a_hole_is_read_from_the_database_once_it_has_waited(layer, room, quick):
    members = [Member(), Member()]
    hub, stored = await fed(layer, room, *members)
    await members[0].until_ids([1])
    # 2 never reaches the worker (the layer dropped it): 3 and 4 wait for it.
    await layer.group_send("room-scores", stored[3])
    await layer.group_send("room-scores", stored[4])
    await asyncio.sleep(0.15)
    assert members[0].ids() == [1]
    await members[0].until_ids([1, 2, 3, 4])
    for member in members:
        assert member.ids() == [1, 2, 3, 4]
        spans = [(batch["first"], batch["last"]) for batch in member.batches]
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))
    # Every socket got the very same frame: made once, for the worker.
    assert members[0].batches[1]["text"] is members[1].batches[1]["text"]
    for member in members:
        await hub.leave("room-scores", member)


async def test_a_deleted_message_in_a_hole_is_skipped_not_waited_for(layer, room, alice, quick):
    member = Member()
    await database_sync_to_async(message_delete)(room_id=room.pk, number=2, user=alice)
    hub, stored = await fed(layer, room, member)
    await member.until_ids([1])
    await layer.group_send("room-scores", stored[3])
    await member.until_ids([1, 3])
    spans = [(batch["first"], batch["last"]) for batch in member.batches]
    # 2 is covered (its number passed) with nothing in the frame for it.
    assert spans == [(1, 1), (2, 3)]
    assert [m["id"] for m in json.loads(member.batches[1]["text"])["messages"]] == [3]
    await hub.leave("room-scores", member)


async def test_a_socket_that_cannot_take_a_batch_gets_it_in_order_in_its_inbox(layer, room, quick):
    member = Member(takes=False)
    hub, stored = await fed(layer, room, member)
    first = await asyncio.wait_for(member.inbox.get(), 5)
    assert (first["type"], first["first"], first["last"]) == ("chat.messages", 1, 1)
    # Two messages, then another kind of event inside the tick: the messages go first.
    await layer.group_send("room-scores", stored[2])
    await layer.group_send("room-scores", stored[3])
    await layer.group_send("room-scores", {"type": "chat.state", "text": "{}"})
    second = await asyncio.wait_for(member.inbox.get(), 5)
    third = await asyncio.wait_for(member.inbox.get(), 5)
    assert (second["type"], second["first"], second["last"]) == ("chat.messages", 2, 3)
    assert third["type"] == "chat.state"
    await hub.leave("room-scores", member)


async def test_a_repeat_of_a_message_already_handed_out_goes_to_each_socket_as_it_is(
    layer, room, quick
):
    member = Member()
    hub, stored = await fed(layer, room, member)
    await member.until_ids([1])
    await layer.group_send("room-scores", stored[1])
    repeat = await asyncio.wait_for(member.inbox.get(), 5)
    assert (repeat["type"], repeat["id"]) == ("chat.message", 1)
    assert member.ids() == [1]
    await hub.leave("room-scores", member)


def viewer_counts(member: Member) -> list[int]:
    return [event["count"] for event in member.inbox.messages if event["type"] == "chat.viewers"]


async def test_viewers_are_the_room_sockets_of_every_worker_and_no_page_socket(make_layer, room):
    """Two workers (two layers); a page's /ws/me/ socket is a member of the feed and no viewer."""
    first, second = FeedHub(make_layer(capacity=100)), FeedHub(make_layer(capacity=100))
    await first.layer.connection(0).delete(keys.viewers("room-scores"))
    watching = [Member(takes=False) for _ in range(3)]
    pages = [Member(takes=False, watches=False) for _ in range(2)]
    for member in [*watching[:2], pages[0]]:
        await first.join("room-scores", member, batched=True)
    for member in [watching[2], pages[1]]:
        await second.join("room-scores", member, batched=True)
    await first.count_viewers()
    await second.count_viewers()
    await first.count_viewers()
    assert (first.viewers("room-scores"), second.viewers("room-scores")) == (3, 3)
    assert viewer_counts(watching[0])[-1] == 3 and viewer_counts(watching[2]) == [3]

    # One leaves and one arrives between two ticks: the newcomer's welcome said 4,
    # the others were told 3; the tick tells them all 3 again.
    newcomer = Member(takes=False)
    await second.join("room-scores", newcomer, batched=True)
    await second.count_viewers(["room-scores"], announce=False)
    assert second.viewers("room-scores") == 4  # what the newcomer's welcome says
    await first.leave("room-scores", watching[1])
    await first.count_viewers()
    await second.count_viewers()
    assert viewer_counts(newcomer) == [3]
    assert viewer_counts(watching[2]) == [3, 3]

    # A worker's last viewer leaves: its count is gone at once, not when it expires.
    await second.leave("room-scores", watching[2])
    await second.leave("room-scores", newcomer)
    await second.leave("room-scores", pages[1])
    await first.count_viewers()
    assert first.viewers("room-scores") == 1
    assert viewer_counts(watching[0])[-1] == 1
