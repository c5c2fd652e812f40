"""The Redis shards from the environment (chat/platform/redis/config.py) and the checks that
refuse a configuration that cannot work. Pure: no Redis needed."""

from __future__ import annotations

import pytest
from channels_redis.core import RedisChannelLayer
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from chat.platform.redis.checks import startup_check
from chat.platform.redis.config import describe_host, layer_hosts, redis_shards
from chat.platform.redis.routing import room_shard, shard_of, user_shard


def test_one_plain_url_is_one_shard_as_always():
    config = redis_shards({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert not config.problems and not config.warnings
    assert layer_hosts(config, socket_keepalive=True) == [
        {"address": "redis://127.0.0.1:6379/0", "socket_keepalive": True}
    ]
    assert redis_shards({}).shards[0].url == "redis://127.0.0.1:6379/0"


def test_comma_separated_urls_are_shards_in_order():
    config = redis_shards({"REDIS_URL": "redis://a:6379/0, redis://b:6379/0,redis://c:6380/2"})
    assert [host["address"] for host in layer_hosts(config)] == [
        "redis://a:6379/0",
        "redis://b:6379/0",
        "redis://c:6380/2",
    ]


def test_sentinels_make_one_shard_per_master_and_take_precedence():
    config = redis_shards(
        {
            "REDIS_URL": "redis://ignored:6379/0",
            "REDIS_SENTINELS": "s1:26379,s2:26380,[::1]:26381",
            "REDIS_SENTINEL_MASTERS": "chat-0,chat-1",
            "REDIS_SENTINEL_PASSWORD": "hush",
        }
    )
    assert not config.problems
    assert config.warnings and "REDIS_URL is set but not used" in config.warnings[0]
    hosts = layer_hosts(config, socket_timeout=None)
    assert [host["master_name"] for host in hosts] == ["chat-0", "chat-1"]
    assert hosts[0]["sentinels"] == [["s1", 26379], ["s2", 26380], ["::1", 26381]]
    assert hosts[0]["sentinel_kwargs"] == {"socket_timeout": 5, "password": "hush"}
    assert hosts[1]["socket_timeout"] is None
    assert describe_host(hosts[1]) == "Sentinel master chat-1"


def test_a_shards_name_never_shows_its_password():
    assert describe_host({"address": "redis://:s3cret@cache:6380/1"}) == "redis://cache:6380/1"


@pytest.mark.parametrize(
    "environ, says",
    [
        ({"REDIS_SENTINELS": "s1:26379"}, "REDIS_SENTINEL_MASTERS is not"),
        ({"REDIS_SENTINEL_MASTERS": "chat-0"}, "REDIS_SENTINELS is not"),
        ({"REDIS_SENTINELS": "s1", "REDIS_SENTINEL_MASTERS": "m"}, "is not host:port"),
        ({"REDIS_SENTINELS": "s1:99999", "REDIS_SENTINEL_MASTERS": "m"}, "is not host:port"),
        ({"REDIS_SENTINELS": "s1:1", "REDIS_SENTINEL_MASTERS": "m,m"}, "names a master twice"),
        ({"REDIS_URL": "http://redis:6379/0"}, "is not a redis://"),
        ({"REDIS_URL": "redis://redis:port/0"}, "is not a URL"),
        ({"REDIS_URL": "redis://a:6379/0,redis://a:6379/0"}, "lists a shard twice"),
    ],
)
def test_an_inconsistent_configuration_is_refused_saying_what_to_fix(environ, says, settings):
    config = redis_shards(environ)
    assert any(says in problem for problem in config.problems), config.problems
    settings.CHAT_REDIS = config
    errors = [m for m in checks.run_checks() if m.id == "chat.E010"]
    assert errors and any(says in error.msg for error in errors)
    with pytest.raises(ImproperlyConfigured, match="cannot work"):
        startup_check(config)


def test_the_default_configuration_passes_the_checks():
    assert not [m for m in checks.run_checks() if m.id in {"chat.E010", "chat.W010"}]


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_a_key_lives_where_channels_redis_puts_its_group(shards):
    """The routing is channels-redis' own consistent hash: a room's keys share its group's
    shard. (channels-redis' hash is private; this pins it.)"""
    layer = RedisChannelLayer(hosts=[{"address": f"redis://h{i}:6379"} for i in range(shards)])
    for name in ["room-1", "room-77", "user-5", "rooms", "specific.abc!", "épée"]:
        assert shard_of(name, shards) == layer.consistent_hash(name), name
    for pk in range(1, 200):
        assert room_shard(pk, shards) == layer.consistent_hash(f"room-{pk}")
        assert user_shard(pk, shards) == layer.consistent_hash(f"user-{pk}")


def test_rooms_spread_evenly_over_three_shards():
    counts = [0, 0, 0]
    for pk in range(1, 1001):
        counts[room_shard(pk, 3)] += 1
    assert all(abs(count - 1000 / 3) < 1000 / 3 * 0.2 for count in counts), counts


def test_no_module_but_chat_redis_opens_a_client_or_picks_shard_zero():
    """One owner of Redis access: pools, shards and keys are decided in chat/platform/redis/."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sources = [
        path
        for path in [*root.joinpath("chat").rglob("*.py"), *root.joinpath("chatsite").glob("*.py")]
        if path.relative_to(root).parts[:3] != ("chat", "platform", "redis")
        and "migrations" not in path.parts
    ]
    assert root / "chat" / "domain" / "presence.py" in sources
    forbidden = ["connection(0)", "Redis(", "from_url(", "Sentinel(", "ConnectionPool("]
    found = [
        f"{path.relative_to(root)}: {word}"
        for path in sources
        for word in forbidden
        if word in path.read_text()
    ]
    assert found == []
