"""Tokens never reach a worker's access log (chat/platform/server.py)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
import websockets

from chat.platform.server import scrub

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "path, logged",
    [
        ("/ws/rooms/general/?token=abc.def:ghi", "/ws/rooms/general/?token=[removed]"),
        ("/api/rooms/?after=1&token=abc&x=1", "/api/rooms/?after=1&token=[removed]&x=1"),
        ("/x/?TOKEN=abc;access_token=def", "/x/?TOKEN=[removed];access_token=[removed]"),
        ("/x/?notatoken=abc", "/x/?notatoken=abc"),
        ("/x/?token=", "/x/?token=[removed]"),
    ],
)
def test_scrub(path, logged):
    assert scrub(path) == logged


async def test_no_token_in_the_access_log(cluster_factory, room):
    cluster = cluster_factory(1)
    worker = cluster.workers[0]
    token = await asyncio.to_thread(cluster.token, "user00")
    url = worker.url.replace("http", "ws", 1) + f"/ws/rooms/{room}/?token={token}&after=0"
    async with websockets.connect(url) as socket:
        assert '"welcome"' in await socket.recv()
    for path in (f"/api/rooms/?token={token}", f"/ws/rooms/{room}/?token={token}"):
        # Over plain HTTP too, as a client or proxy that lost the upgrade would send it.
        try:
            await asyncio.to_thread(urllib.request.urlopen, worker.url + path, timeout=5)
        except urllib.error.HTTPError:
            pass
    await asyncio.sleep(0.5)
    log = worker.log()
    assert "token=[removed]" in log
    assert "WSCONNECT" in log  # the access log is on: the test sees what it would write
    assert token not in log
    assert token.split(":")[-1] not in log
