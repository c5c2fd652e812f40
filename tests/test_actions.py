"""Every write goes through chat/actions/: one gate, one transaction, events sent on commit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from chat.actions import messages, reactions, rooms
from chat.actions.outbox import run
from chat.errors import ChatError
from chat.models import Message, Room

ROOT = Path(__file__).resolve().parent.parent

# The edges: they call actions, and never build nor send a room's event themselves.
EDGES = [
    "chat/sockets/room.py",
    "chat/sockets/audience.py",
    "chat/sockets/base.py",
    "chat/sockets/commands.py",
    "chat/sockets/presence.py",
    "chat/platform/socket.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chat/web/views").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chat/admin").glob("*.py")),
    "chat/actions/publish.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chat/management/commands").glob("*.py")),
]


def calls(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every call in a module."""

    def name(node: ast.expr) -> str:
        if isinstance(node, ast.Attribute):
            return f"{name(node.value)}.{node.attr}"
        if isinstance(node, ast.Name):
            return node.id
        return "?"

    tree = ast.parse(path.read_text())
    return [(node.lineno, name(node.func)) for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_no_edge_builds_or_sends_a_rooms_event_by_hand():
    found = [
        f"{edge}:{line}: {called}"
        for edge in EDGES
        for line, called in calls(ROOT / edge)
        if called.endswith(("group_send", "send_on_commit")) or (called.startswith("events.chat_"))
    ]
    assert found == []


def test_the_scan_sees_a_hand_made_event(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "async def f(self):\n"
        "    await self.channel_layer.group_send('room-1', events.chat_typing(user_id=1))\n"
    )
    assert [called for _, called in calls(sample)] == [
        "self.channel_layer.group_send",
        "events.chat_typing",
    ]


pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_socket_gets_an_actions_events_to_send_itself(alice, general):
    """Sent from the event loop after the socket's own answer, not from the database thread."""
    sent, outbox = await run(
        messages.message_send, room_id=general.pk, author=alice, body="hi", client_id="c1"
    )
    assert sent.created and sent.message.number == 1
    assert [(group, event["type"]) for group, event in outbox] == [
        (general.group_name, "chat.message")
    ]
    again, nothing = await run(
        messages.message_send, room_id=general.pk, author=alice, body="hi", client_id="c1"
    )
    assert not again.created and nothing == []  # a resend broadcasts nothing


async def test_events_leave_only_once_the_transaction_commits(alice, general):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(general.group_name, channel)

    def rolled_back() -> None:
        with transaction.atomic():
            messages.message_send(room_id=general.pk, author=alice, body="never", client_id=None)
            raise ChatError("bad_request", "changed my mind")

    with pytest.raises(ChatError):
        await sync_to_async(rolled_back)()
    await sync_to_async(messages.message_send)(
        room_id=general.pk, author=alice, body="kept", client_id=None
    )
    event = await layer.receive(channel)
    assert (event["type"], event["id"]) == ("chat.message", 1)
    assert await sync_to_async(Message.objects.filter(room=general).count)() == 1


async def writes(room: Room, user) -> list[str]:
    """The refusal of each kind of write to `room` by `user`, through the actions."""
    refusals = []
    for action, kwargs in [
        (
            messages.message_send,
            {"room_id": room.pk, "author": user, "body": "x", "client_id": None},
        ),
        (messages.message_edit, {"room_id": room.pk, "number": 1, "user": user, "body": "y"}),
        (messages.message_delete, {"room_id": room.pk, "number": 1, "user": user}),
        (
            reactions.reaction_set,
            {"room_id": room.pk, "number": 1, "user": user, "emoji": "👍", "present": True},
        ),
    ]:
        with pytest.raises(ChatError) as refused:
            await run(action, **kwargs)
        refusals.append(refused.value.code)
    return refusals


async def test_every_write_goes_through_one_gate(alice, make_user, general):
    """Archived: room_archived for every write; broadcast: forbidden but to publishers."""
    await run(messages.message_send, room_id=general.pk, author=alice, body="1", client_id=None)
    general.archived = True
    await sync_to_async(general.save)()
    assert await writes(general, alice) == ["room_archived"] * 4
    stage = await sync_to_async(Room.objects.create)(
        name="Stage", slug="stage", kind=Room.Kind.BROADCAST
    )
    staff = await sync_to_async(make_user)("editor", is_staff=True)
    await run(messages.message_send, room_id=stage.pk, author=staff, body="1", client_id=None)
    assert await writes(stage, alice) == ["forbidden"] * 4


async def test_a_read_tells_the_readers_pages_only_when_the_mark_moves(alice, bob, general):
    await sync_to_async(messages.message_send)(
        room_id=general.pk, author=bob, body="news", client_id=None
    )
    _, moved = await run(rooms.room_read, room=general, user=alice, number=1)
    _, still = await run(rooms.room_read, room=general, user=alice, number=1)
    assert [group for group, _ in moved] == [f"me-{alice.pk}"] and still == []
