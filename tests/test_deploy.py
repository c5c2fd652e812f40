"""The deployment files of one host: daphne's arguments, docker-compose.yml and what it
names, the one entry that starts the workers, and nginx's upload limit and media.
Several hosts (docker-compose.scale.yml) are in test_deploy_scale.py.
"""

from __future__ import annotations

import configparser
import importlib
import json
import os
import re

import jsonschema
import pytest
from django.conf import settings

from tests.deploy_helpers import ROOT, compose, daphne_args, dockerfile_command, interpolate


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


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale.yml"])
def test_compose_file_follows_the_compose_specification(name):
    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose(name=name))


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
    for volume in services["nginx"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (ROOT / source).is_file(), source
        else:  # a named volume, declared
            assert source in compose()["volumes"], source
    assert "USER chat" in (ROOT / "Dockerfile").read_text()


# --- one entry for the workers on every path -----------------------------------------


ENTRY = "deploy/daphne.sh"


def supervisord_command() -> list[str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "deploy" / "supervisord.conf")
    command = config["fcgi-program:daphne"]["command"].split()
    # supervisord's %(here)s is the directory of its config file, deploy/.
    return [command[0].replace("%(here)s", "deploy"), *command[1:]]


def test_every_path_starts_the_workers_through_the_one_entry():
    """`make run` (supervisord), the image and compose run deploy/daphne.sh alone.

    So every worker, wherever it runs, blanks tokens in its access log and has
    the socket limits of deploy/daphne.args.
    """
    image = dockerfile_command()
    web = compose()["services"]["web"]["command"]
    supervised = supervisord_command()
    assert image[0] == web[0] == supervised[0] == ENTRY
    # Behind nginx the workers trust its X-Forwarded headers; under supervisord
    # they share the one socket it opened.
    assert web == image and "--proxy-headers" in image
    assert supervised[1:] == ["--fd", "0"]
    # Nothing else starts daphne itself.
    for text in (
        (ROOT / "Dockerfile").read_text(),
        (ROOT / "docker-compose.yml").read_text(),
        (ROOT / "docker-compose.scale.yml").read_text(),
        (ROOT / "deploy" / "supervisord.conf").read_text(),
        (ROOT / "deploy" / "run.sh").read_text(),
    ):
        assert not re.search(r"(^|[\s\"/])daphne\s+\$", text)
        assert "chat.platform.server" not in text


def test_the_entry_runs_the_sites_server_with_deploy_daphne_args():
    entry = ROOT / ENTRY
    assert os.access(entry, os.X_OK)
    [command] = [line for line in entry.read_text().splitlines() if line.startswith("exec ")]
    words = command.split()
    assert words[:4] == ["exec", "python", "-m", "chat.platform.server"]
    assert words[4] == "$(cat" and words[5] == "deploy/daphne.args)"
    assert words[6] == '"$@"'
    module, attribute = words[7].split(":")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    assert callable(getattr(importlib.import_module(module), attribute))
    assert importlib.import_module("chat.platform.server").main


# --- files: the upload limit, the handed-over bytes, the cleanup ------------------------------


def nginx_site() -> str:
    return (ROOT / "deploy" / "nginx" / "chat.conf").read_text()


def nginx_location(name: str) -> str:
    """The body of one `location <name> { ... }` of the site (closed at its own indent)."""
    pattern = r"location\s+" + re.escape(name) + r"\s*\{(.*?)\n    \}"
    match = re.search(pattern, nginx_site(), re.DOTALL)
    assert match, f"no location {name} in deploy/nginx/chat.conf"
    return match[1]


def nginx_size(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    match = re.fullmatch(r"(\d+)([kmg]?)", value.lower())
    assert match, value
    return int(match[1]) * units[match[2]]


def test_nginx_takes_every_upload_the_site_takes_and_refuses_larger_ones_in_its_words():
    from chat.files.upload_limit import body_limit

    uploads = nginx_location("= /api/uploads/")
    [size] = re.findall(r"client_max_body_size\s+(\S+);", uploads)
    # Every body the site would read gets through; above it, nginx answers first.
    assert nginx_size(size) >= body_limit()
    # ...in the API's format, with the limit of the default setting.
    assert "error_page 413 = @upload_too_large;" in uploads
    refusal = re.search(r"return 413 '([^']*)';", nginx_location("@upload_too_large"))
    assert refusal
    answer = json.loads(refusal[1])
    assert answer["error"] == "too_large"
    assert answer["limit"] == settings.CHAT_UPLOAD_MAX_BYTES == 10 * 1024 * 1024
    # Every other request keeps the small limit.
    assert "client_max_body_size 1m;" in nginx_site()


def test_nginx_serves_the_workers_media_only_when_a_worker_hands_it_over():
    app = compose()["services"]["web"]["environment"]
    prefix = app["CHAT_FILES_ACCEL_REDIRECT"]
    protected = nginx_location(prefix)
    assert re.search(r"^\s*internal;", protected, re.MULTILINE)
    [alias] = re.findall(r"alias\s+(\S+);", protected)
    assert "X-Content-Type-Options nosniff always" in protected
    # nginx reads, read-only, the volume the workers write to, at the alias.
    services = compose()["services"]
    mounts = {service: services[service].get("volumes", []) for service in services}
    assert f"media:{alias.rstrip('/')}:ro" in mounts["nginx"]
    assert f"media:{app['DJANGO_MEDIA_ROOT']}" in mounts["web"]
    assert "media" in compose()["volumes"]
    # The image makes that directory its user's, whose owner the volume takes.
    assert f"mkdir -p {app['DJANGO_MEDIA_ROOT']} && chown chat" in (ROOT / "Dockerfile").read_text()


def supervised_cleanup() -> tuple[str, str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "deploy" / "supervisord.conf")
    program = config["program:uploads-cleanup"]
    return program["command"], program["directory"]


def test_uploads_never_attached_are_cleaned_up_on_every_path():
    """`make run` (supervisord) and compose both run the cleanup, the same way."""
    command, directory = supervised_cleanup()
    assert directory == "%(here)s/.."
    cleanup = compose()["services"]["cleanup"]
    assert cleanup["command"] == command.split()
    assert cleanup["command"][:4] == ["python", "manage.py", "chat_uploads_cleanup", "--every"]
    assert int(cleanup["command"][4]) <= 3600  # uploads go within an hour of their day
    assert (ROOT / "chat" / "management" / "commands" / "chat_uploads_cleanup.py").exists()
    # It deletes from the volume the workers write to.
    web = compose()["services"]["web"]
    assert cleanup["volumes"] == web["volumes"]
    assert cleanup["environment"] == web["environment"]
