"""The deployment files: daphne's arguments, docker-compose.yml and what it names."""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

import jsonschema
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def daphne_args() -> dict[str, str]:
    words = (ROOT / "deploy" / "daphne.args").read_text().split()
    return dict(zip(words[::2], words[1::2], strict=True))


def test_group_membership_outlives_the_longest_socket():
    # A socket older than group_expiry silently drops out of its room's group;
    # daphne closes every socket after --websocket_timeout, so that must come first.
    timeout = int(daphne_args()["--websocket_timeout"])
    assert 0 < timeout <= settings.CHANNEL_LAYERS["default"]["CONFIG"]["group_expiry"]


def test_daphne_frame_limit_stays_above_the_protocol_limit():
    # Beyond daphne's own limit it drops the TCP connection without a close
    # frame; the protocol's 4009 must be the answer up to well past 64 KiB.
    args = daphne_args()
    assert int(args["--websocket-max-message-size"]) > settings.CHAT_FRAME_MAX_BYTES
    assert int(args["--websocket-max-frame-size"]) > settings.CHAT_FRAME_MAX_BYTES


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as docker compose reads them."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert operator != ":?", f"{name} is required: {argument}"
        return argument or ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", value, text)


def compose(env: dict[str, str] | None = None) -> dict:
    text = (ROOT / "docker-compose.yml").read_text()
    return yaml.safe_load(interpolate(text, {"DJANGO_SECRET_KEY": "s" * 50, **(env or {})}))


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose())


def test_compose_requires_a_secret_and_sets_workers_by_one_variable():
    text = (ROOT / "docker-compose.yml").read_text()
    try:
        interpolate(text, {})
    except AssertionError as error:
        assert "DJANGO_SECRET_KEY" in str(error)
    else:
        raise AssertionError("compose must refuse to start without DJANGO_SECRET_KEY")
    assert compose({"WORKERS": "5"})["services"]["web"]["deploy"]["replicas"] == 5


def test_compose_names_only_things_that_exist():
    services = compose()["services"]
    for name in ("redis", "db"):
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"]["command"][:2] == ["python", "manage.py"]
    assert (ROOT / "manage.py").exists()
    web = " ".join(services["web"]["command"])
    assert "--proxy-headers" in web and "deploy/daphne.args" in web
    assert (ROOT / "deploy" / "daphne.args").exists()
    module, attribute = re.search(r"(\S+):(\w+)$", web).groups()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    assert callable(getattr(importlib.import_module(module), attribute))
    for volume in services["nginx"]["volumes"]:
        source = volume.split(":")[0]
        assert (ROOT / source).is_file(), source
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER chat" in dockerfile and "deploy/daphne.args" in dockerfile
