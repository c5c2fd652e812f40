"""The shared-frame path (chat/platform/wire.py) is on under the real daphne: a broadcast room's
frames are framed once and written prepared to every viewer of the worker.

Were daphne's `send` to change shape, every frame would still arrive (through `send`),
so only the worker's own count tells the two apart: /healthz's `wire`, shown to a
probe on the worker's machine (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest

from tests.integration.conftest import Cluster, base_env, manage
from tests.integration.test_broadcast_live import http, next_of, viewer

pytestmark = pytest.mark.integration

VIEWERS = 4
MESSAGES = 3


@pytest.fixture
def key(database_url: str, stage: str) -> str:
    return manage(base_env(database_url), "chat_bot_key", "framebot", "--room", stage).strip()


def wire_report(cluster: Cluster) -> dict[str, Any]:
    """The worker's shared-frame counts, as /healthz tells a local probe."""
    with urllib.request.urlopen(cluster.workers[0].url + "/healthz", timeout=10) as response:
        body = json.load(response)
    assert "wire" in body, body
    report = body["wire"]
    assert isinstance(report, dict)
    return report


async def test_a_broadcast_tick_is_written_prepared_to_every_viewer(
    cluster_factory: Any, stage: str, key: str
):
    cluster = cluster_factory(count=1)
    viewers = [await viewer(cluster, 0, stage) for _ in range(VIEWERS)]
    before = await asyncio.to_thread(wire_report, cluster)
    assert before["sockets"] >= VIEWERS and before["fallback"] is None, before
    url = cluster.workers[0].url + f"/api/rooms/{stage}/messages/"
    for number in range(1, MESSAGES + 1):
        status, _, _ = await asyncio.to_thread(http, "POST", url, {"body": f"tick {number}"}, key)
        assert status == 201
        for client in viewers:
            frame = await next_of(client, "messages")
            assert [m["id"] for m in frame["messages"]] == [number]
    after = await asyncio.to_thread(wire_report, cluster)
    prepared = after["prepared"] - before["prepared"]
    shared = after["shared"] - before["shared"]
    # Each message framed once (a tick each, one server factory), written to every viewer.
    assert after["fallback"] is None, after
    assert 1 <= prepared <= MESSAGES, after
    assert shared == VIEWERS * MESSAGES, (before, after)
    assert "shared frames are off" not in cluster.workers[0].log()
    for client in viewers:
        await client.close()
