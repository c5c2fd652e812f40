"""chat/sockets/lifecycle.py: a socket's hold on the worker's epoch watch, on the real Redis
layer, with the socket faked (its shards, and the closes it was asked for)."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from chat.protocol import CloseCode
from chat.sockets.lifecycle import Lifecycle


class Watched:
    """A socket as the watch sees it, with the lifecycle under test."""

    presence_entry = None

    def __init__(self) -> None:
        self.closes: list[CloseCode] = []
        self.lifecycle = Lifecycle(self, close=self.close)

    async def close(self, code: CloseCode) -> None:
        self.closes.append(code)

    def shards(self) -> set[int]:
        return {0}

    def watched_rooms(self) -> list[int]:
        return []

    async def catch_up(self, last_numbers: dict[int, int]) -> None:
        pass

    async def layer_restarted(self) -> None:
        await self.lifecycle.layer_restarted()


@pytest.fixture
async def joined() -> Watched:
    socket = Watched()
    await socket.lifecycle.join(get_channel_layer())
    assert not socket.lifecycle.restarted
    return socket


async def test_a_restart_once_opened_closes_with_4012_once(joined):
    watch = joined.lifecycle.watch
    await joined.lifecycle.open()
    assert joined.closes == []
    await watch.close_on({0})
    assert joined.closes == [CloseCode.SERVICE_RESTART]
    assert joined not in watch.consumers
    await joined.layer_restarted()  # a queue reader's loss on the same shard, say
    assert joined.closes == [CloseCode.SERVICE_RESTART]


async def test_a_restart_while_opening_waits_for_the_open(joined):
    watch = joined.lifecycle.watch
    await watch.close_on({0})
    # A close now would refuse the handshake or cut the welcome: the socket decides.
    assert joined.closes == [] and joined.lifecycle.restarted
    await joined.lifecycle.open()
    assert joined.closes == [CloseCode.SERVICE_RESTART]


async def test_a_socket_that_left_is_closed_no_more(joined):
    watch = joined.lifecycle.watch
    joined.lifecycle.leave()
    assert joined not in watch.consumers
    await watch.close_on({0})
    await joined.layer_restarted()
    assert joined.closes == []


async def test_a_restart_on_another_shard_leaves_the_socket_open(joined):
    await joined.lifecycle.open()
    await joined.lifecycle.watch.close_on({1})
    assert joined.closes == [] and not joined.lifecycle.restarted
