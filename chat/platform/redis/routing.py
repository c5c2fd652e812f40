"""Which shard a key lives on: the consistent hash channels-redis uses, on a room or a user.

channels-redis puts a group on shard `consistent_hash(group name)`. Every key
of a room (presence, viewers, typing) goes where its group `room-<pk>` is,
and every key of a user (rate limits) where `user-<pk>` is: a room's work
touches one shard, and a multi-key script always finds its keys together.
"""

from __future__ import annotations

import binascii

from chat.platform.groups import room_group_name, user_group_name

# channels-redis' ring: a name's CRC-32 picks one of these slots, split evenly over the shards.
SLOTS = 1 << 12


def shard_of(name: str, shards: int) -> int:
    """The shard of `name` among `shards`: channels-redis' consistent hash (a CRC-32 of
    the name, in 4096 slots split evenly). tests/test_redis_config.py pins it to the layer's."""
    if shards == 1:
        return 0
    slot = binascii.crc32(name.encode("utf8")) & (SLOTS - 1)
    return int(slot / (SLOTS / float(shards)))


def room_shard(room_id: int, shards: int) -> int:
    """The shard of a room's group and of every key of the room."""
    return shard_of(room_group_name(room_id), shards)


def user_shard(user_id: int, shards: int) -> int:
    """The shard of a user's group and of every key of the user."""
    return shard_of(user_group_name(user_id), shards)
