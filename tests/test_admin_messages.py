"""The admin: moderating messages, with deletions, edits and reactions taken away
broadcast live on the real Redis layer.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import Client

from chat.domain.reactions import reaction_set
from chat.domain.writes import message_delete
from chat.models import Message, Reaction, Room
from tests.admin_helpers import admin as admin  # a fixture
from tests.admin_helpers import root as root  # a fixture
from tests.helpers import send

pytestmark = pytest.mark.django_db


# --- messages ---------------------------------------------------------------------------


def message_ids(response) -> set[tuple[str, int]]:
    assert response.status_code == 200
    return {(m.room.slug, m.number) for m in response.context["cl"].result_list}


def test_message_changelist_filters_by_room_and_searches(admin, alice, bob, general):
    lounge = Room.objects.create(name="Lounge", slug="lounge")
    send(general, alice, body="apples and pears")
    send(general, bob, body="bananas")
    send(lounge, bob, body="more apples")
    everything = admin.get("/admin/chat/message/")
    assert message_ids(everything) == {("general", 1), ("general", 2), ("lounge", 1)}
    assert message_ids(admin.get(f"/admin/chat/message/?room__id__exact={lounge.pk}")) == {
        ("lounge", 1)
    }
    assert message_ids(admin.get("/admin/chat/message/?q=apples")) == {
        ("general", 1),
        ("lounge", 1),
    }
    assert message_ids(admin.get("/admin/chat/message/?q=alice")) == {("general", 1)}
    assert message_ids(admin.get(f"/admin/chat/message/?q=bob&room__id__exact={general.pk}")) == {
        ("general", 2)
    }


def test_message_changelist_filters_deleted(admin, alice, general):
    send(general, alice)
    send(general, alice)
    message_delete(room_id=general.pk, number=1, user=alice)
    assert message_ids(admin.get("/admin/chat/message/?deleted=yes")) == {("general", 1)}
    assert message_ids(admin.get("/admin/chat/message/?deleted=no")) == {("general", 2)}


def test_admin_cannot_add_messages(admin, general):
    assert admin.get("/admin/chat/message/add/").status_code == 403
    response = admin.post(
        "/admin/chat/message/add/", {"room": general.pk, "body": "x", "number": 7}
    )
    assert response.status_code == 403
    assert not Message.objects.exists()
    assert "/admin/chat/message/add/" not in admin.get("/admin/chat/message/").content.decode()


def test_admin_pages_need_staff(client, alice, general):
    response = client.get("/admin/chat/message/")
    assert response.status_code == 302
    client.force_login(alice)
    assert client.get("/admin/chat/message/").status_code == 302


def test_admin_delete_in_an_archived_room_keeps_the_number(admin, alice, general):
    send(general, alice)
    message = send(general, alice, body="spam")
    Room.objects.filter(pk=general.pk).update(archived=True)
    response = admin.post(f"/admin/chat/message/{message.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.deleted_at is not None
    assert message.number == 2
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [("   ", "This field is required"), ("x" * 4001, "at most 4000"), ("a\x00b", "Null char")],
)
def test_admin_body_edit_obeys_the_body_rules(admin, alice, general, body, error):
    message = send(general, alice, body="original")
    response = admin.post(f"/admin/chat/message/{message.pk}/change/", {"body": body})
    assert response.status_code == 200
    assert error in response.content.decode()
    message.refresh_from_db()
    assert (message.body, message.edited) == ("original", False)


# --- live broadcasts on the real Redis layer ----------------------------------------------
# database_sync_to_async, not sync_to_async: it closes the worker thread's connection,
# which would otherwise keep the test database from being dropped.


async def listen(room: Room) -> tuple[object, str]:
    """A channel of the real layer in the room's group, as a connected socket has."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(room.group_name, channel)
    return layer, channel


async def next_event(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=3)


async def as_admin(admin: Client, method: str, path: str, data: dict):
    """The admin client's request, from async code (each thread closes its connection)."""
    return await database_sync_to_async(getattr(admin, method))(path, data)


@pytest.mark.django_db(transaction=True)
async def test_admin_delete_soft_deletes_and_broadcasts(admin, alice, general):
    await database_sync_to_async(send)(general, alice, body="one")
    spam = await database_sync_to_async(send)(general, alice, body="spam")
    layer, channel = await listen(general)

    response = await as_admin(
        admin, "post", f"/admin/chat/message/{spam.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302

    event = await next_event(layer, channel)
    assert event["type"] == "chat.message_deleted"
    assert json.loads(event["text"]) == {"type": "message.deleted", "id": 2}

    stored = await database_sync_to_async(Message.objects.get)(pk=spam.pk)
    assert stored.deleted_at is not None
    assert stored.number == 2
    assert stored.body == "spam"  # kept for the record; history leaves it out
    # The next message still gets the next number.
    assert (await database_sync_to_async(send)(general, alice)).number == 3


@pytest.mark.django_db(transaction=True)
async def test_admin_bulk_delete_soft_deletes_each_and_broadcasts_each(admin, alice, general):
    messages = [await database_sync_to_async(send)(general, alice, body=f"m{i}") for i in range(3)]
    layer, channel = await listen(general)

    response = await as_admin(
        admin,
        "post",
        "/admin/chat/message/",
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in messages[:2]],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    received = [json.loads((await next_event(layer, channel))["text"]) for _ in range(2)]
    assert sorted(frame["id"] for frame in received) == [1, 2]
    assert {frame["type"] for frame in received} == {"message.deleted"}

    numbers = await database_sync_to_async(
        lambda: list(
            Message.objects.filter(room=general)
            .order_by("number")
            .values_list("number", "deleted_at")
        )
    )()
    assert [number for number, _ in numbers] == [1, 2, 3]
    assert [deleted is not None for _, deleted in numbers] == [True, True, False]


@pytest.mark.django_db(transaction=True)
async def test_admin_body_edit_marks_edited_and_broadcasts(admin, alice, general):
    message = await database_sync_to_async(send)(general, alice, body="rude words")
    layer, channel = await listen(general)

    response = await as_admin(
        admin,
        "post",
        f"/admin/chat/message/{message.pk}/change/",
        {"body": "[removed by a moderator]"},
    )
    assert response.status_code == 302

    event = await next_event(layer, channel)
    assert event["type"] == "chat.message_edited"
    assert json.loads(event["text"]) == {
        "type": "message.edited",
        "id": 1,
        "body": "[removed by a moderator]",
        "mentions": [],
    }
    stored = await database_sync_to_async(Message.objects.get)(pk=message.pk)
    assert stored.body == "[removed by a moderator]"
    # What live pages showed as edited is edited in history too.
    assert stored.edited is True


@pytest.mark.django_db(transaction=True)
async def test_admin_takes_a_reaction_away_live(admin, alice, bob, general):
    await database_sync_to_async(send)(general, alice, body="look")
    for user, emoji in ((bob, "👍"), (alice, "🎉")):
        await database_sync_to_async(reaction_set)(
            room_id=general.pk, number=1, user=user, emoji=emoji, present=True
        )
    reaction = await database_sync_to_async(Reaction.objects.get)(emoji="👍")
    layer, channel = await listen(general)

    response = await as_admin(
        admin, "post", f"/admin/chat/reaction/{reaction.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    event = await next_event(layer, channel)
    assert event["type"] == "chat.reactions"
    assert json.loads(event["text"]) == {
        "type": "message.reactions",
        "id": 1,
        "reactions": [{"emoji": "🎉", "count": 1, "users": ["alice"]}],
        "version": 3,
    }
    assert await database_sync_to_async(Reaction.objects.count)() == 1
