"""What is wrong with the Redis configuration, said before anything is served.

- The system check (`manage.py check`, every `migrate`): chat.E010 for each
  problem of the environment (chat.platform.redis.config), chat.W010 for each warning.
- `startup_check`, as every worker starts (chatsite/asgi.py): the same
  problems end the worker with their message; and with Sentinel, each master
  name is asked of the Sentinels: one that a Sentinel answers for but does
  not know is an error. Sentinels that cannot be reached are not: the worker
  starts, and /healthz says which shard is down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured

from chat.platform.redis.config import RedisConfig

logger = logging.getLogger(__name__)


def configuration_check(
    *, app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """System check: the problems and warnings of the Redis environment."""
    config: RedisConfig = settings.CHAT_REDIS
    messages: list[CheckMessage] = [
        CheckError(problem, id="chat.E010") for problem in config.problems
    ]
    messages += [CheckWarning(warning, id="chat.W010") for warning in config.warnings]
    return messages


def startup_check(config: RedisConfig) -> None:
    """Refuse to serve with a configuration that cannot work (ImproperlyConfigured)."""
    if config.problems:
        raise ImproperlyConfigured(
            "The Redis configuration cannot work:\n  " + "\n  ".join(config.problems)
        )
    for warning in config.warnings:
        logger.warning("%s", warning)
    for shard in config.shards:
        if shard.master is None:
            continue
        answered, known = _ask_sentinels(shard.sentinels, shard.master, shard.sentinel_password)
        if answered and not known:
            raise ImproperlyConfigured(
                f"No Sentinel of REDIS_SENTINELS knows a master named {shard.master!r}"
                f" (asked {', '.join(answered)}): check REDIS_SENTINEL_MASTERS against the"
                " names in the Sentinels' configuration (`sentinel monitor <name> ...`)."
            )


def _ask_sentinels(
    sentinels: Sequence[tuple[str, int]], master: str, password: str | None
) -> tuple[list[str], bool]:
    """(the Sentinels that answered, whether any of them knows `master`)."""
    answered: list[str] = []
    for host, port in sentinels:
        client = redis.Redis(
            host=host, port=port, password=password, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            address = client.sentinel_get_master_addr_by_name(master)
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()
        answered.append(f"{host}:{port}")
        if address:
            return answered, True
    if not answered:
        logger.warning("no Sentinel answered at start-up: master %s unknown for now", master)
    return answered, False
