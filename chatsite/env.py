"""Reading settings from the environment (chatsite/settings.py, chatsite/chat_settings.py).

Each helper reads its variable from os.environ when it is called, nothing is kept
between calls, and a value it cannot read is refused with the variable's name.
"""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool = False) -> bool:
    """Read a yes/no variable; anything but a known spelling is an error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a yes/no value")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Read a whole number of at least `minimum`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated list."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> tuple[int, int]:
    """Read "<count>/<seconds>s" into (count, seconds)."""
    raw = os.environ.get(name) or default
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*s\s*", raw)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ImproperlyConfigured(f"{name}={raw!r} is not of the form <count>/<seconds>s")
    return int(match[1]), int(match[2])
