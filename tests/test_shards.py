"""The site on two Redis shards (two redis-servers of the test's own): every room's keys
on its group's shard, a shard's loss closing only the sockets that depend on it, and
/healthz naming the shard that is down."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings as django_settings
from django.test import Client

from chat.models import Room
from chat.platform.redis import keys
from chat.platform.redis.routing import room_shard, user_shard
from tests.conftest import Socket
from tests.servers import PrivateRedis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frames_without_presence"),
    pytest.mark.redis,
]


@pytest.fixture
def shards(settings: Any, tmp_path: Path) -> Iterator[list[PrivateRedis]]:
    """Two redis-servers, the layer's two shards. Request it before `connect`."""
    servers = [PrivateRedis(tmp_path / f"shard{i}") for i in range(2)]
    for index, server in enumerate(servers):
        (tmp_path / f"shard{index}").mkdir()
        server.start()
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    template = layers["default"]["CONFIG"]["hosts"][0]
    layers["default"]["CONFIG"]["hosts"] = [{**template, "address": s.url} for s in servers]
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    settings.CHAT_LAYER_CHECK_INTERVAL = 0.2
    settings.CHAT_LAYER_TIMEOUT = 2.0
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
        channel_layers.backends.clear()


def on_shard(shard: int, count: int = 1, kind: str = "room", start: int = 1) -> list[int]:
    """Primary keys whose rooms (or users) live on `shard` of two."""
    route = room_shard if kind == "room" else user_shard
    found = [pk for pk in range(start, start + 200) if route(pk, 2) == shard]
    return found[:count]


def room_on(shard: int) -> Room:
    taken = set(Room.objects.values_list("pk", flat=True))
    pk = next(pk for pk in on_shard(shard, 50) if pk not in taken)
    return Room.objects.create(pk=pk, name=f"Room {pk}", slug=f"room-{pk}")


def user_on(make_user: Any, shard: int, name: str) -> Any:
    user = make_user(name)
    while user_shard(user.pk, 2) != shard:  # the next pk, until one lives there
        user.delete()
        user = make_user(name)
    return user


def server_keys(server: PrivateRedis, pattern: str) -> set[str]:
    client = redis.Redis(port=server.port)
    try:
        return {key.decode() for key in client.scan_iter(pattern)}
    finally:
        client.close()


async def test_a_rooms_keys_live_on_its_groups_shard(shards, connect, make_user):
    layer = get_channel_layer()
    rooms = [await database_sync_to_async(room_on)(shard) for shard in (0, 1)]
    users = [await database_sync_to_async(user_on)(make_user, s, f"u{s}") for s in (0, 1)]
    sockets = []
    for room in rooms:
        for user in users:
            sock, _ = await connect(user, room.slug)
            sockets.append(sock)
            await sock.send({"type": "typing"})
            await sock.send({"type": "message.send", "body": "hi", "client_id": f"{user.pk}"})
            message = await sock.receive_type("message")
            await sock.send({"type": "reaction.add", "id": message["id"], "emoji": "👍"})
    for room in rooms:
        own = shards[room_shard(room.pk, 2)]
        other = shards[1 - room_shard(room.pk, 2)]
        for pattern in (keys.presence(room.pk), keys.typing(room.pk, users[0].pk)):
            assert server_keys(own, pattern) == {pattern}
            assert server_keys(other, pattern) == set()
        assert server_keys(own, f"{layer.prefix}:group:{room.group_name}")
    for user in users:
        own = shards[user_shard(user.pk, 2)]
        rate = keys.rate(user.pk, "reactions")
        assert server_keys(own, rate) == {rate}
        assert server_keys(shards[1 - user_shard(user.pk, 2)], rate) == set()
    counts = await sync_to_async(Client().get)("/healthz")
    expected = [{"shard": i, "status": "ok", "name": shards[i].url} for i in (0, 1)]
    assert counts.json()["redis_shards"] == expected


async def test_a_shards_restart_closes_only_the_sockets_that_lived_on_it(
    shards, connect, make_user
):
    """Every worker has a queue on every shard, and a group's messages queue on the
    group's own shard: a shard's loss deafens only the sockets whose groups live there."""
    kept_room = await database_sync_to_async(room_on)(0)
    lost_room = await database_sync_to_async(room_on)(1)
    user = await database_sync_to_async(user_on)(make_user, 0, "stays")
    staying: Socket = (await connect(user, kept_room.slug))[0]
    leaving: Socket = (await connect(user, lost_room.slug))[0]

    await asyncio.to_thread(shards[1].stop)
    await asyncio.to_thread(shards[1].start)  # empty: its groups are gone
    assert await leaving.closed_with(timeout=5) == 4012
    await asyncio.sleep(1)  # several looks of the watch
    await staying.send({"type": "message.send", "body": "still here", "client_id": "s1"})
    assert (await staying.receive_type("message"))["id"] == 1
    # The closed one resumes, on the shard that came back.
    _, welcome = await connect(user, lost_room.slug, after=0)
    assert welcome is not None


async def test_healthz_is_503_only_when_every_shard_is_down(shards):
    # A probe of this worker's own (no proxy): the reasons are shown.
    await asyncio.to_thread(shards[1].stop)
    answer = await sync_to_async(Client().get)("/healthz")
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "degraded"
    assert body["redis"] == "degraded"
    assert [shard["status"] for shard in body["redis_shards"]] == ["ok", "error"]
    await asyncio.to_thread(shards[0].stop)
    answer = await sync_to_async(Client().get)("/healthz")
    assert answer.status_code == 503
    assert (answer.json()["status"], answer.json()["redis"]) == ("unavailable", "error")


async def test_a_groups_message_queues_on_the_groups_own_shard(shards):
    """One script on the group's shard reads the group and queues the message there."""
    layer = get_channel_layer()
    # A channel of a worker that is not reading (no inbox): its entries stay queued.
    channel = f"specific.{'a' * 32}!x"
    groups = {shard: next(f"room-{pk}" for pk in on_shard(shard, 1)) for shard in (0, 1)}
    for group in groups.values():
        await layer.group_add(group, channel)
        await layer.group_send(group, {"type": "chat.typing", "user_id": 1})
    for shard in (0, 1):
        client = redis.Redis(port=shards[shard].port)
        entries = client.zrange(layer.prefix + f"specific.{'a' * 32}!", 0, -1)
        client.close()
        assert len(entries) == 1, shard  # the message of its own group only
        assert entries[0][12:].startswith(channel.encode() + b"\n")


def synced(replica: redis.Redis) -> None:
    deadline = time.monotonic() + 10
    while replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.05)


class Recorder:
    """A watched socket as the watch sees it: the shards it lives on, and whether it was closed."""

    presence_entry = None

    def __init__(self, shards: set[int]) -> None:
        self.on = shards
        self.restarted = False

    def shards(self) -> set[int]:
        return self.on

    def watched_rooms(self) -> list[int]:
        return []

    async def layer_restarted(self) -> None:
        self.restarted = True

    async def catch_up(self, last_numbers: dict[int, int]) -> None:
        pass


async def test_a_promotion_that_keeps_the_data_is_seen_by_the_replication_id(shards, tmp_path):
    """A replica promoted by Sentinel has the epoch key (replicated) but maybe not the last
    writes: only its new replication id tells. Here shard 1 becomes a replica of a server
    holding the same data, then a master again, between two looks of the watch."""
    from chat.sockets.watcher import EpochWatch

    layer = get_channel_layer()
    watch = EpochWatch(layer)
    await watch.check()
    on_zero, on_one = Recorder({0}), Recorder({1})
    watch.consumers.add(on_zero)
    watch.consumers.add(on_one)
    source = PrivateRedis(tmp_path / "shard0", name="source")
    source.start()
    try:
        epoch_key = keys.epoch()
        shard, copy_of = redis.Redis(port=shards[1].port), redis.Redis(port=source.port)
        copy_of.set(epoch_key, shard.get(epoch_key))
        replid = shard.info("replication")["master_replid"]
        await asyncio.to_thread(shard.replicaof, "127.0.0.1", source.port)
        await asyncio.to_thread(synced, shard)
        await asyncio.to_thread(shard.replicaof, "NO", "ONE")
        assert shard.info("replication")["master_replid"] != replid
        assert shard.get(epoch_key) == copy_of.get(epoch_key)  # the data came along
        shard.close()
        copy_of.close()
    finally:
        source.stop()
    await watch.check()
    assert on_one.restarted and not on_zero.restarted


class BlackHole:
    """A TCP port that accepts connections and never answers: a shard hung, not dead."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.held: list[Any] = []
        threading.Thread(target=self.hold, daemon=True).start()

    def hold(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


async def test_every_call_to_a_hung_shard_is_bounded_by_the_layer_timeout(
    settings, connect, make_user, tmp_path
):
    """Whichever shard a call goes to, it gives up after CHAT_LAYER_TIMEOUT: a room on
    the hung shard is refused (4013), the other shard's rooms are served, /healthz answers."""
    live = PrivateRedis(tmp_path, name="live")
    live.start()
    hung = BlackHole()
    try:
        layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
        template = layers["default"]["CONFIG"]["hosts"][0]
        layers["default"]["CONFIG"]["hosts"] = [
            {**template, "address": url} for url in (live.url, hung.url)
        ]
        settings.CHANNEL_LAYERS = layers
        channel_layers.backends.clear()
        settings.CHAT_LAYER_TIMEOUT = 1.0
        user = await database_sync_to_async(user_on)(make_user, 0, "patient")
        served = await database_sync_to_async(room_on)(0)
        stuck = await database_sync_to_async(room_on)(1)
        started = time.monotonic()
        sock, _ = await connect(user, stuck.slug, expect_welcome=False)
        assert await sock.closed_with(timeout=10) == 4013
        assert time.monotonic() - started < 6
        fine, _ = await connect(user, served.slug)
        await fine.send({"type": "message.send", "body": "served", "client_id": "f"})
        assert (await fine.receive_type("message"))["body"] == "served"
        started = time.monotonic()
        answer = await sync_to_async(Client().get)("/healthz")
        assert time.monotonic() - started < 3
        assert answer.status_code == 200 and answer.json()["redis"] == "degraded"
    finally:
        hung.close()
        live.stop()
        channel_layers.backends.clear()
