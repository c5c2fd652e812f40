"""Loading chatsite.settings in a fresh interpreter with a controlled environment, for
tests/test_settings*.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


# What settings.py and chat_settings.py read; everything else of the environment is passed through.
READ_PREFIXES = ("DJANGO_", "CHAT_")


READ_NAMES = {"DATABASE_URL", "DATABASE_PGBOUNCER", "REDIS_URL"}


DUMP = """
import json
import chatsite.settings as s
layer = s.CHANNEL_LAYERS["default"]
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SECRET_KEY": s.SECRET_KEY,
    "DATABASE": s.DATABASES["default"],
    "LAYER": layer,
    "CHAT_RATE_LIMIT": s.CHAT_RATE_LIMIT,
    "CHAT_TOKEN_TTL": s.CHAT_TOKEN_TTL,
    "CHAT_LOGIN_LIMIT": s.CHAT_LOGIN_LIMIT,
    "CHAT_SIGNUP_LIMIT": s.CHAT_SIGNUP_LIMIT,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
}, default=str))
"""


SECRET = "test-only-" + "k" * 50


def clean_env(**variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(READ_PREFIXES) and name not in READ_NAMES
    }
    env.update(variables)
    return env


def run(args: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
        timeout=60,
    )


def load(**variables: str) -> dict[str, Any]:
    """The settings' values under exactly these variables; fails if they do not load."""
    result = run(["-c", DUMP], **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refused(**variables: str) -> str:
    """The error output of loading settings that must refuse to load."""
    result = run(["-c", "import chatsite.settings"], **variables)
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr
