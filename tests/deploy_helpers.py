"""Reading the deployment files as their programs do (tests/test_deploy*.py,
integration/test_compose_health.py): compose files with their variables, daphne's
arguments, the commands that start the workers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def daphne_args() -> dict[str, str]:
    words = (ROOT / "deploy" / "daphne.args").read_text().split()
    return dict(zip(words[::2], words[1::2], strict=True))


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as docker compose reads them."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert operator != ":?", f"{name} is required: {argument}"
        return argument or ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", value, text)


def compose(env: dict[str, str] | None = None, *, name: str = "docker-compose.yml") -> dict:
    text = (ROOT / name).read_text()
    return yaml.safe_load(interpolate(text, {"DJANGO_SECRET_KEY": "s" * 50, **(env or {})}))


def dockerfile_command() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    [command] = [line.removeprefix("CMD ") for line in lines if line.startswith("CMD ")]
    return json.loads(command)


# --- several hosts: docker-compose.scale.yml and what it names --------------------------------

SCALE = "docker-compose.scale.yml"


def scale(env: dict[str, str] | None = None) -> dict:
    return compose(env, name=SCALE)
