"""The Redis shards of the site, read from the environment (no Django import here).

    REDIS_URL=redis://a:6379/0,redis://b:6379/0          # shards, comma-separated
    REDIS_SENTINELS=s1:26379,s2:26379,s3:26379            # Sentinel instead:
    REDIS_SENTINEL_MASTERS=chat-0,chat-1,chat-2           #   one master name per shard
    REDIS_SENTINEL_PASSWORD=...                           #   optional

One plain REDIS_URL is one shard, as it always was. With REDIS_SENTINELS set,
REDIS_URL is not used. `redis_shards` never raises: what is wrong is returned
as problems, which the system check chat.E010 (and every worker's start)
refuses with a message that says what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class Shard:
    """One shard: a plain Redis at `url`, or the master `master` that `sentinels` watch."""

    index: int
    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    sentinel_password: str | None = None

    def describe(self) -> str:
        """What to call the shard in logs, checks and /healthz (never a password)."""
        if self.master is not None:
            return f"Sentinel master {self.master}"
        return describe_host({"address": self.url})


@dataclass(frozen=True)
class RedisConfig:
    shards: tuple[Shard, ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def describe_host(host: Mapping[str, object]) -> str:
    """A layer `hosts` entry as logs and /healthz name it: its URL without a password, or
    its Sentinel master's name."""
    if host.get("master_name") is not None:
        return f"Sentinel master {host['master_name']}"
    parts = urlsplit(str(host.get("address", "")))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _words(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


def _sentinel_address(raw: str) -> tuple[str, int] | None:
    host, colon, port = raw.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def redis_shards(environ: Mapping[str, str]) -> RedisConfig:
    """The shards the environment names, and what is wrong with it."""
    problems: list[str] = []
    warnings: list[str] = []
    sentinels_raw = _words(environ.get("REDIS_SENTINELS"))
    masters = _words(environ.get("REDIS_SENTINEL_MASTERS"))
    password = environ.get("REDIS_SENTINEL_PASSWORD") or None
    urls = _words(environ.get("REDIS_URL"))
    if sentinels_raw:
        if urls:
            warnings.append(
                "REDIS_URL is set but not used: REDIS_SENTINELS takes precedence."
                " Unset REDIS_URL, or unset REDIS_SENTINELS to use it."
            )
        sentinels = []
        for raw in sentinels_raw:
            address = _sentinel_address(raw)
            if address is None:
                problems.append(
                    f"REDIS_SENTINELS: {raw!r} is not host:port (such as sentinel-1:26379)."
                )
            else:
                sentinels.append(address)
        if not masters:
            problems.append(
                "REDIS_SENTINELS is set but REDIS_SENTINEL_MASTERS is not: name the master"
                " of each shard, comma-separated (such as chat-0,chat-1,chat-2)."
            )
        if len(set(masters)) != len(masters):
            problems.append(
                f"REDIS_SENTINEL_MASTERS names a master twice ({','.join(masters)}):"
                " each shard is a master of its own."
            )
        shards = tuple(
            Shard(index=i, sentinels=tuple(sentinels), master=name, sentinel_password=password)
            for i, name in enumerate(masters)
        )
        return RedisConfig(shards=shards, problems=tuple(problems), warnings=tuple(warnings))
    if masters:
        problems.append(
            "REDIS_SENTINEL_MASTERS is set but REDIS_SENTINELS is not: list the Sentinels"
            " as host:port, comma-separated, or unset REDIS_SENTINEL_MASTERS."
        )
    if password and not masters:
        warnings.append("REDIS_SENTINEL_PASSWORD is set but not used: REDIS_SENTINELS is not set.")
    urls = urls or [DEFAULT_URL]
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            problems.append(f"REDIS_URL: {url!r} is not a URL (such as redis://redis:6379/0).")
            continue
        if parts.scheme not in SCHEMES:
            problems.append(f"REDIS_URL: {url!r} is not a redis://, rediss:// or unix:// URL.")
    if len(set(urls)) != len(urls):
        problems.append(
            "REDIS_URL lists a shard twice: each shard must be a Redis of its own,"
            " or its keys would be counted twice."
        )
    shards = tuple(Shard(index=i, url=url) for i, url in enumerate(urls))
    return RedisConfig(shards=shards, problems=tuple(problems), warnings=tuple(warnings))


def layer_hosts(config: RedisConfig, **connection: object) -> list[dict[str, object]]:
    """The `hosts` of the channel layer's CONFIG, one entry per shard, in order.

    A plain shard is {"address": url}; a Sentinel one is channels-redis' own
    form, {"sentinels": [...], "master_name": ..., "sentinel_kwargs": {...}}.
    `connection` options (timeouts, keepalive) go to every entry.
    """
    hosts: list[dict[str, object]] = []
    for shard in config.shards:
        if shard.master is not None:
            sentinel_kwargs: dict[str, object] = {
                "socket_timeout": connection.get("socket_connect_timeout", 5)
            }
            if shard.sentinel_password:
                sentinel_kwargs["password"] = shard.sentinel_password
            hosts.append(
                {
                    "sentinels": [list(address) for address in shard.sentinels],
                    "master_name": shard.master,
                    "sentinel_kwargs": sentinel_kwargs,
                    **connection,
                }
            )
        else:
            hosts.append({"address": shard.url, **connection})
    return hosts
