"""Who is online, on the real Redis layer: welcome.online, joined and left."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from chat.domain import presence
from chat.platform.redis import keys

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


async def next_presence(socket) -> dict:
    return await socket.receive_type("presence")


async def test_welcome_lists_who_is_online_and_others_hear_joined_and_left(
    connect, alice, bob, general
):
    a, welcome = await connect(alice)
    assert welcome["online"] == ["alice"]
    b, welcome = await connect(bob)
    assert welcome["online"] == ["alice", "bob"]
    assert await next_presence(a) == {"type": "presence", "joined": ["bob"]}
    assert await b.nothing()  # its own arrival is in its welcome, not a frame
    await b.close()
    assert await next_presence(a) == {"type": "presence", "left": ["bob"]}


async def test_a_user_with_two_sockets_stays_online_until_the_last_closes(
    connect, alice, bob, general
):
    a, _ = await connect(alice)
    first, _ = await connect(bob)
    assert await next_presence(a) == {"type": "presence", "joined": ["bob"]}
    second, welcome = await connect(bob)
    assert welcome["online"] == ["alice", "bob"]
    assert await a.nothing()  # bob was online already
    await first.close()
    assert await a.nothing()  # still online on the other socket
    counts = await sync_to_async(presence.online_counts)([general.pk])
    assert counts == {general.pk: 2}
    await second.close()
    assert await next_presence(a) == {"type": "presence", "left": ["bob"]}
    assert await sync_to_async(presence.online_counts)([general.pk]) == {general.pk: 1}


async def test_expired_sockets_are_swept_and_announced(connect, alice, bob, general):
    from channels.layers import get_channel_layer

    a, _ = await connect(alice)
    layer = get_channel_layer()
    connection = layer.connection(0)
    # A socket of a worker that died: registered as a join does, never refreshed since.
    member = presence.socket_member(user_id=bob.pk, username="bob", channel_name="dead!x")
    await presence.presence_join(connection, room_id=general.pk, user_id=bob.pk, member=member)
    await connection.zadd(keys.presence(general.pk), {member: 1}, xx=True)
    assert await sync_to_async(presence.online_counts)([general.pk]) == {general.pk: 1}
    # Not yet due: the room's index entry says when its first socket expires.
    assert await presence.presence_sweep_due(connection) == []
    await connection.zadd(keys.presence_rooms(), {str(general.pk): 1})
    # Swept by a worker with no socket in the room: its own sockets do not matter.
    await presence.presence_heartbeat(layer, [SimpleNamespace(presence_entry=None)])
    assert await next_presence(a) == {"type": "presence", "left": ["bob"]}
    assert await connection.zcard(keys.presence(general.pk)) == 1
    # The room is due again when alice's socket expires, and not before.
    (first,) = await connection.zrange(keys.presence(general.pk), 0, 0, withscores=True)
    assert await connection.zscore(keys.presence_rooms(), str(general.pk)) == first[1]
    await presence.presence_heartbeat(layer, [])
    assert await a.nothing()


async def test_a_room_no_one_left_leaves_the_sweep_index(connect, alice, general):
    from channels.layers import get_channel_layer

    connection = get_channel_layer().connection(0)
    a, _ = await connect(alice)
    assert await connection.zscore(keys.presence_rooms(), str(general.pk)) is not None
    await a.close()
    for _ in range(250):  # the server's disconnect runs after the close handshake
        if not await connection.zcard(keys.presence(general.pk)):
            break
        await asyncio.sleep(0.02)
    await connection.zadd(keys.presence_rooms(), {str(general.pk): 1})
    assert await presence.presence_sweep_due(connection) == []
    assert await connection.zscore(keys.presence_rooms(), str(general.pk)) is None


async def test_news_arriving_out_of_order_never_leaves_a_user_wrongly_online(
    connect, alice, bob, general
):
    """Two workers' broadcasts may cross: a socket tells only news newer than it told."""
    from channels.layers import get_channel_layer

    from chat.domain import events

    b, _ = await connect(bob)
    a, _ = await connect(alice)
    assert await b.receive_type("presence") == {"type": "presence", "joined": ["alice"]}
    layer = get_channel_layer()
    version = int(await layer.connection(0).get(keys.presence_version(general.pk)))
    # carol left (decided second), but her earlier `joined` is delivered after.
    for event in (
        events.chat_presence(room_id=general.pk, left=["carol"], version=version + 2),
        events.chat_presence(room_id=general.pk, joined=["carol"], version=version + 1),
    ):
        await layer.group_send(general.group_name, event)
    for sock in (a, b):
        assert await sock.receive_type("presence") == {"type": "presence", "left": ["carol"]}
        assert await sock.nothing()
    # News from before a socket's welcome is already in its `online` list.
    await layer.group_send(
        general.group_name,
        events.chat_presence(room_id=general.pk, left=["alice"], version=version - 1),
    )
    assert await a.nothing() and await b.nothing()
    # A mixed event passes on only what is news.
    await layer.group_send(
        general.group_name,
        events.chat_presence(room_id=general.pk, joined=["carol", "dave"], version=version + 1),
    )
    for sock in (a, b):
        assert await sock.receive_type("presence") == {"type": "presence", "joined": ["dave"]}
