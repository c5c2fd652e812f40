"""A socket's plain message: one round trip on the event loop (chat/actions/plain.py, PostgreSQL)
and its twin on the database thread (chat.domain.writes.message_create) give the same answers.

On SQLite the plain path declines and every message takes the twin: the same tests run
there, and prove the twin's side of each rule.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import DatabaseError, connection
from django.utils import timezone

from chat.actions import plain
from chat.actions.messages import message_send, message_send_async
from chat.domain import events
from chat.errors import ChatError
from chat.models import Message, Mute, Room

pytestmark = pytest.mark.django_db(transaction=True)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the plain path runs on PostgreSQL only"
)


async def send(room: Room, user: Any, body: str = "hello", client_id: str | None = None):
    """A socket's send, as the consumer makes it; (Sent, outbox) or the ChatError."""
    try:
        return await message_send_async(room=room, author=user, body=body, client_id=client_id)
    except ChatError as error:
        return error


def refusal(outcome: Any) -> tuple[str, str] | None:
    return (outcome.code, outcome.detail) if isinstance(outcome, ChatError) else None


async def test_the_plain_path_runs_on_postgresql_only(alice, general, monkeypatch):
    calls = []
    real = plain.plain_store

    async def counted(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(plain, "plain_store", counted)
    sent, outbox = await send(general, alice, client_id="c1")
    assert sent.created and sent.number == 1 and len(outbox) == 1
    assert len(calls) == (1 if connection.vendor == "postgresql" else 0)
    # A reply, a mention or a file takes the twin everywhere.
    await send(general, alice, body="@bob look")
    assert len(calls) == (1 if connection.vendor == "postgresql" else 0)


async def test_its_frames_are_the_twins_to_the_byte(alice, general):
    """Built from the row, with no model instance, as the twin builds them from the model."""
    sent, [(group, event)] = await send(general, alice, body="  hi there  ", client_id="c1")
    stored = await database_sync_to_async(
        lambda: events.chat_message(Message.objects.for_wire().get(room=general, number=1))
    )()
    assert group == general.group_name and event == stored
    assert sent.acknowledgement == stored["author_text"]
    twin = await database_sync_to_async(message_send)(
        room_id=general.pk, author=alice, body="twin", client_id=None
    )
    assert twin.event is not None and set(twin.event) == set(event)


async def test_a_resend_is_stored_once_and_broadcast_once(alice, general):
    first, outbox = await send(general, alice, client_id="same")
    again, nothing = await send(general, alice, client_id="same")
    assert (first.created, again.created, again.number) == (True, False, first.number)
    assert len(outbox) == 1 and nothing == []


async def test_the_same_client_id_twice_at_once_is_stored_once(alice, general):
    outcomes = await asyncio.gather(*(send(general, alice, client_id="twice") for _ in range(4)))
    assert sorted(sent.created for sent, _ in outcomes) == [False, False, False, True]
    assert {sent.number for sent, _ in outcomes} == {1}
    assert await database_sync_to_async(Message.objects.count)() == 1


async def test_concurrent_sends_of_one_user_never_pass_the_limit(alice, bob, general, settings):
    settings.CHAT_RATE_LIMIT = (5, 60)
    outcomes = await asyncio.gather(*(send(general, alice, body=f"m{n}") for n in range(12)))
    stored = [o for o in outcomes if not isinstance(o, ChatError)]
    refused = [o for o in outcomes if isinstance(o, ChatError)]
    assert len(stored) == 5 and len(refused) == 7
    assert {error.code for error in refused} == {"rate_limited"}
    assert all(0 < error.retry_after <= 60 for error in refused)
    # Per user: bob sends on; and only stored messages count (a refusal takes no place).
    sent, _ = await send(general, bob)
    assert sent.created
    numbers = await database_sync_to_async(
        lambda: list(Message.objects.order_by("number").values_list("number", flat=True))
    )()
    assert numbers == [1, 2, 3, 4, 5, 6]


async def test_retry_after_is_when_the_oldest_counted_message_leaves_the_window(
    alice, general, settings
):
    settings.CHAT_RATE_LIMIT = (2, 10)
    for n in range(2):
        await send(general, alice, body=f"m{n}")
    oldest = timezone.now() - timedelta(seconds=7)
    await database_sync_to_async(Message.objects.filter(number=1).update)(created=oldest)
    refused = await send(general, alice)
    assert isinstance(refused, ChatError) and refused.code == "rate_limited"
    assert 2.5 < refused.retry_after <= 3.01


@pytest.mark.parametrize("case", ["muted", "muted everywhere", "archived", "broadcast", "gone"])
async def test_refusals_are_the_twins(alice, general, case):
    """The plain path stores nothing and the twin says why, as it would alone."""
    room = general
    if case == "muted":
        await database_sync_to_async(Mute.objects.create)(user=alice, room=general, reason="spam")
    elif case == "muted everywhere":
        await database_sync_to_async(Mute.objects.create)(user=alice, reason="spam")
    elif case == "archived":
        await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(archived=True)
    elif case == "broadcast":
        room = await database_sync_to_async(Room.objects.create)(
            name="Stage", slug="stage", kind=Room.Kind.BROADCAST
        )
    elif case == "gone":
        alice.is_active = False
        await database_sync_to_async(alice.save)()
    outcome = await send(room, alice, client_id="x")
    with pytest.raises(ChatError) as twin:
        await database_sync_to_async(message_send)(
            room_id=room.pk, author=alice, body="hello", client_id="x"
        )
    assert refusal(outcome) == (twin.value.code, twin.value.detail)
    assert await database_sync_to_async(Message.objects.count)() == 0
    assert (
        await database_sync_to_async(lambda: Room.objects.get(pk=room.pk).last_message_number)()
        == 0
    )


@postgres_only
async def test_a_database_lost_mid_send_is_unavailable_and_the_next_send_reconnects(alice, general):
    await send(general, alice, body="first")
    holder = plain._connection()
    backend = (await holder.get()).info.backend_pid
    await database_sync_to_async(_terminate)(backend)
    with pytest.raises(DatabaseError):
        await message_send_async(room=general, author=alice, body="lost", client_id="l")
    sent, _ = await send(general, alice, body="lost", client_id="l")  # a new connection
    assert sent.created and sent.number == 2
    assert (await holder.get()).info.backend_pid != backend


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
