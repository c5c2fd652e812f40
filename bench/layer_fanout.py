"""Group fan-out through each channels-redis layer class, in one process.

    .venv/bin/python bench/layer_fanout.py [--members 100 1000] [--messages 200]

For each layer (channels-redis' two and the site's) and group size: one
group of N member channels (as N sockets on one worker), M group_send calls,
and the time until every member has received every message; reported as
deliveries per second and as ratios to RedisChannelLayer in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

# ChatChannelLayer reads two of the site's settings.
settings.configure(CHAT_LAYER_TIMEOUT=5.0, CHAT_LAYER_CHECK_INTERVAL=2.0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat.platform.layers import ChatChannelLayer  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


async def run(layer_class: type, members: int, messages: int) -> float:
    host = {"address": REDIS_URL, "socket_timeout": None}
    layer = layer_class(hosts=[host], prefix=f"bench-{uuid.uuid4().hex[:8]}", capacity=10_000)
    group = "room-bench"
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(group, channel)
    received = 0
    done = asyncio.Event()

    async def member(channel: str) -> None:
        nonlocal received
        for _ in range(messages):
            await layer.receive(channel)
            received += 1
            if received == members * messages:
                done.set()

    tasks = [asyncio.create_task(member(channel)) for channel in channels]
    await asyncio.sleep(0.5)  # subscriptions settle
    text = '{"type":"message","id":1,"body":"' + "x" * 100 + '"}'
    started = time.perf_counter()
    for number in range(messages):
        await layer.group_send(group, {"type": "chat.message", "id": number, "text": text})
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await layer.group_discard(group, channel)
    if hasattr(layer, "flush"):
        await layer.flush()
    return members * messages / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    print(
        "| members | RedisChannelLayer deliveries/s | ChatChannelLayer deliveries/s"
        " | RedisPubSubChannelLayer deliveries/s | Chat / Redis | PubSub / Redis |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for members in args.members:
        core = await run(RedisChannelLayer, members, args.messages)
        chat = await run(ChatChannelLayer, members, args.messages)
        pubsub = await run(RedisPubSubChannelLayer, members, args.messages)
        print(
            f"| {members} | {core:,.0f} | {chat:,.0f} | {pubsub:,.0f}"
            f" | {chat / core:.2f} | {pubsub / core:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
