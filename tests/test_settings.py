"""chatsite.settings, loaded in a fresh interpreter with a controlled environment."""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Each test loads the settings in a fresh interpreter: the slow part of the
# unit tier, left out of `make test-fast`.
pytestmark = pytest.mark.processes

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


# --- the secret and debug ------------------------------------------------------------


def test_missing_secret_key_fails_loudly_with_debug_off():
    assert "DJANGO_SECRET_KEY" in refused()
    assert "DJANGO_SECRET_KEY" in refused(DJANGO_SECRET_KEY="")
    assert "DJANGO_SECRET_KEY" in refused(DJANGO_DEBUG="0")


def test_debug_runs_without_a_secret_key():
    values = load(DJANGO_DEBUG="1")
    assert values["DEBUG"] is True
    assert values["SECRET_KEY"]


def test_debug_is_off_by_default_and_the_secret_is_used():
    values = load(DJANGO_SECRET_KEY=SECRET)
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == SECRET


def test_a_debug_value_that_is_not_yes_or_no_fails_loudly():
    assert "DJANGO_DEBUG" in refused(DJANGO_DEBUG="maybe", DJANGO_SECRET_KEY=SECRET)


# --- chat limits -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["20", "abc", "20/10", "0/10s", "20/0s", "-1/10s", "20/10m"])
@pytest.mark.parametrize("name", ["CHAT_RATE_LIMIT", "CHAT_LOGIN_LIMIT", "CHAT_SIGNUP_LIMIT"])
def test_bad_rate_limit_fails_loudly(raw, name):
    assert name in refused(DJANGO_SECRET_KEY=SECRET, **{name: raw})


@pytest.mark.parametrize("raw", ["abc", "1.5", "0", "-5", "5s"])
def test_bad_token_ttl_fails_loudly(raw):
    assert "CHAT_TOKEN_TTL" in refused(DJANGO_SECRET_KEY=SECRET, CHAT_TOKEN_TTL=raw)


def test_limits_default_and_read_from_the_environment():
    defaults = load(DJANGO_SECRET_KEY=SECRET)
    assert defaults["CHAT_RATE_LIMIT"] == [20, 10]
    assert defaults["CHAT_TOKEN_TTL"] == 300
    assert defaults["CHAT_LOGIN_LIMIT"] == [10, 900]
    assert defaults["CHAT_SIGNUP_LIMIT"] == [10, 3600]
    values = load(
        DJANGO_SECRET_KEY=SECRET,
        CHAT_RATE_LIMIT="5/2s",
        CHAT_TOKEN_TTL="60",
        CHAT_LOGIN_LIMIT="3/60s",
        CHAT_SIGNUP_LIMIT="2/30s",
    )
    assert values["CHAT_RATE_LIMIT"] == [5, 2]
    assert values["CHAT_TOKEN_TTL"] == 60
    assert (values["CHAT_LOGIN_LIMIT"], values["CHAT_SIGNUP_LIMIT"]) == ([3, 60], [2, 30])


# --- database and channel layer -------------------------------------------------------------


def test_database_defaults_to_sqlite_and_parses_postgres_urls():
    sqlite = load(DJANGO_SECRET_KEY=SECRET)["DATABASE"]
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    assert sqlite["NAME"] == str(BASE_DIR / "db.sqlite3")
    assert (sqlite["CONN_MAX_AGE"], sqlite["CONN_HEALTH_CHECKS"]) == (600, True)

    postgres = load(
        DJANGO_SECRET_KEY=SECRET,
        DATABASE_URL="postgres://chat:s3cret@db.example.com:5433/chatdb",
    )["DATABASE"]
    assert postgres["ENGINE"] == "django.db.backends.postgresql"
    assert postgres["NAME"] == "chatdb"
    assert (postgres["USER"], postgres["PASSWORD"]) == ("chat", "s3cret")
    assert (postgres["HOST"], int(postgres["PORT"])) == ("db.example.com", 5433)
    # Kept by the sockets' one database thread and checked before reuse; HTTP
    # requests close theirs (chat.apps; tests/integration/test_connections.py).
    assert (postgres["CONN_MAX_AGE"], postgres["CONN_HEALTH_CHECKS"]) == (600, True)


def test_pgbouncer_turns_off_what_transaction_pooling_breaks():
    """Prepared statements and server-side cursors outlive a transaction on the server;
    tests/integration/test_pgbouncer.py shows each break through a real PgBouncer."""
    url = "postgres://chat:s3cret@pgbouncer:6432/chat"
    direct = load(DJANGO_SECRET_KEY=SECRET, DATABASE_URL=url)["DATABASE"]
    assert direct["DISABLE_SERVER_SIDE_CURSORS"] is False
    assert "prepare_threshold" not in direct.get("OPTIONS", {})
    for yes in ("1", "yes", "true"):
        pooled = load(DJANGO_SECRET_KEY=SECRET, DATABASE_URL=url, DATABASE_PGBOUNCER=yes)
        database = pooled["DATABASE"]
        assert database["DISABLE_SERVER_SIDE_CURSORS"] is True
        assert database["OPTIONS"]["prepare_threshold"] is None
        # The connection's own settings are untouched.
        assert (database["HOST"], int(database["PORT"])) == ("pgbouncer", 6432)
        assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (600, True)
    # Whatever the URL asks for: psycopg would prepare from the second run on.
    asking = load(
        DJANGO_SECRET_KEY=SECRET,
        DATABASE_URL=url + "?prepare_threshold=1&server_side_binding=true",
        DATABASE_PGBOUNCER="1",
    )["DATABASE"]
    assert asking["OPTIONS"] == {"prepare_threshold": None, "server_side_binding": True}
    off = load(DJANGO_SECRET_KEY=SECRET, DATABASE_URL=url, DATABASE_PGBOUNCER="0")["DATABASE"]
    assert off["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_pgbouncer_needs_a_postgres_url_and_a_yes_or_no():
    assert "postgres://" in refused(DJANGO_SECRET_KEY=SECRET, DATABASE_PGBOUNCER="1")
    assert "DATABASE_PGBOUNCER" in refused(
        DJANGO_SECRET_KEY=SECRET,
        DATABASE_URL="postgres://chat:s3cret@pgbouncer:6432/chat",
        DATABASE_PGBOUNCER="transaction",
    )


def test_default_sqlite_connections_use_wal_a_busy_timeout_and_immediate_transactions(
    tmp_path, django_db_blocker
):
    """What `make run` opens: every worker process writes the one file."""
    from django.db.utils import load_backend

    database = load(DJANGO_SECRET_KEY=SECRET)["DATABASE"]
    database.update(NAME=str(tmp_path / "db.sqlite3"), TIME_ZONE=None, AUTOCOMMIT=True)
    wrapper = load_backend(database["ENGINE"]).DatabaseWrapper(database, alias="make-run")
    with django_db_blocker.unblock():
        sqlite_connection_check(wrapper, database["NAME"])


def sqlite_connection_check(wrapper, path: str) -> None:
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20_000
        # A transaction holds the write lock from its BEGIN, before any statement.
        wrapper.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        other = sqlite3.connect(path, timeout=0.1)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            wrapper.rollback()
            wrapper.set_autocommit(True)
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
        finally:
            other.close()
    finally:
        wrapper.close()


def test_channel_layer_has_no_socket_timeout_and_a_deliberate_capacity():
    layer = load(DJANGO_SECRET_KEY=SECRET, REDIS_URL="redis://cache.example.com:6380/2")["LAYER"]
    host = layer["CONFIG"]["hosts"][0]
    assert host["address"] == "redis://cache.example.com:6380/2"
    # An idle socket's blocking read must not time out (it would close with 1011).
    assert "socket_timeout" in host and host["socket_timeout"] is None
    # channels-redis' own default is 100; the site sets its own on purpose.
    assert layer["CONFIG"]["capacity"] == 1000
    assert (
        load(DJANGO_SECRET_KEY=SECRET, CHAT_LAYER_CAPACITY="50")["LAYER"]["CONFIG"]["capacity"]
        == 50
    )
    assert "CHAT_LAYER_CAPACITY" in refused(DJANGO_SECRET_KEY=SECRET, CHAT_LAYER_CAPACITY="0")


# --- deployment ------------------------------------------------------------------------------

PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_HTTPS": "1",
    "DJANGO_ALLOWED_HOSTS": "chat.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
}


def test_check_deploy_passes_in_production():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_complains_without_https():
    # The check is not vacuous: the same site served over plain HTTP is reported.
    without_https = {**PRODUCTION, "DJANGO_HTTPS": "0"}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **without_https)
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # HSTS
    assert "security.W012" in result.stderr  # session cookie not secure


# --- files and their storage (docs/files.md) ---------------------------------------------------

FILES_DUMP = """
import json
import chatsite.settings as s
from chat.web.middleware import content_security_policy
print(json.dumps({
    "STORAGE": s.STORAGES["default"],
    "MEDIA_ROOT": str(s.MEDIA_ROOT),
    "CHAT_UPLOAD_MAX_BYTES": s.CHAT_UPLOAD_MAX_BYTES,
    "CHAT_UPLOAD_KEEP_SECONDS": s.CHAT_UPLOAD_KEEP_SECONDS,
    "CHAT_FILES_ACCEL_REDIRECT": s.CHAT_FILES_ACCEL_REDIRECT,
    "FILE_UPLOAD_MAX_MEMORY_SIZE": s.FILE_UPLOAD_MAX_MEMORY_SIZE,
    "CHAT_IMAGE_MAX_PIXELS": s.CHAT_IMAGE_MAX_PIXELS,
    "CHAT_IMAGE_DECODES": s.CHAT_IMAGE_DECODES,
    "CHAT_UPLOAD_QUOTA_BYTES": s.CHAT_UPLOAD_QUOTA_BYTES,
    "CSP": content_security_policy(),
}))
"""


def load_files(**variables: str) -> dict[str, Any]:
    result = run(
        ["-c", "import django; django.setup()\n" + FILES_DUMP],
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_SECRET_KEY=SECRET,
        **variables,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_files_are_kept_on_disk_by_default_and_served_by_the_workers():
    values = load_files()
    assert values["STORAGE"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert values["MEDIA_ROOT"] == str(BASE_DIR / "var" / "media")
    assert values["CHAT_UPLOAD_MAX_BYTES"] == 10 * 1024 * 1024
    assert values["CHAT_UPLOAD_KEEP_SECONDS"] == 86400
    assert values["CHAT_UPLOAD_QUOTA_BYTES"] == 1024**3
    assert values["CHAT_FILES_ACCEL_REDIRECT"] == ""
    assert "img-src 'self' data:;" in values["CSP"]
    small = load_files(
        CHAT_UPLOAD_MAX_BYTES="1000",
        DJANGO_MEDIA_ROOT="/srv/chat-files",
        CHAT_UPLOAD_QUOTA_BYTES="5000",
    )
    assert small["CHAT_UPLOAD_QUOTA_BYTES"] == 5000
    assert (small["CHAT_UPLOAD_MAX_BYTES"], small["FILE_UPLOAD_MAX_MEMORY_SIZE"]) == (1000, 1000)
    assert small["MEDIA_ROOT"] == "/srv/chat-files"
    behind_nginx = load_files(CHAT_FILES_ACCEL_REDIRECT="/protected-media/")
    assert behind_nginx["CHAT_FILES_ACCEL_REDIRECT"] == "/protected-media/"


def test_image_decodes_are_bounded_by_default_and_by_the_environment():
    # The defaults are the ones tests/integration/test_image_memory_live.py measures.
    values = load_files()
    assert (values["CHAT_IMAGE_MAX_PIXELS"], values["CHAT_IMAGE_DECODES"]) == (24_000_000, 2)
    values = load_files(CHAT_IMAGE_MAX_PIXELS="12000000", CHAT_IMAGE_DECODES="1")
    assert (values["CHAT_IMAGE_MAX_PIXELS"], values["CHAT_IMAGE_DECODES"]) == (12_000_000, 1)


def test_s3_compatible_storage_is_chosen_by_settings_alone():
    values = load_files(
        CHAT_S3_BUCKET="chat-files",
        CHAT_S3_ENDPOINT_URL="https://minio.example.com:9000",
        CHAT_S3_REGION="eu-west-1",
        CHAT_S3_ACCESS_KEY_ID="key",
        CHAT_S3_SECRET_ACCESS_KEY="secret",
        CHAT_S3_ADDRESSING_STYLE="path",
        CHAT_S3_URL_SECONDS="30",
    )
    assert values["STORAGE"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "chat-files",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 30,
            "signature_version": "s3v4",
            "file_overwrite": False,
            "endpoint_url": "https://minio.example.com:9000",
            "region_name": "eu-west-1",
            "access_key": "key",
            "secret_key": "secret",
            "addressing_style": "path",
        },
    }
    # Images redirected to the store may load in the pages.
    assert (
        "img-src 'self' data: https://minio.example.com:9000 https://*.minio.example.com:9000;"
        in values["CSP"]
    )
    # Without credentials or an endpoint: boto3's own chain, AWS itself.
    aws = load_files(CHAT_S3_BUCKET="chat-files")
    assert set(aws["STORAGE"]["OPTIONS"]) == {
        "bucket_name",
        "default_acl",
        "querystring_auth",
        "querystring_expire",
        "signature_version",
        "file_overwrite",
    }
    assert "https://*.amazonaws.com" in aws["CSP"]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CHAT_FILES_ACCEL_REDIRECT", "protected-media"),
        ("CHAT_FILES_ACCEL_REDIRECT", "/protected media/"),
        ("CHAT_UPLOAD_MAX_BYTES", "10MB"),
        ("CHAT_UPLOAD_MAX_BYTES", "0"),
        ("CHAT_UPLOAD_KEEP_SECONDS", "5"),
        ("CHAT_UPLOAD_RATE_LIMIT", "30"),
        ("CHAT_IMAGE_MAX_PIXELS", "24MP"),
        ("CHAT_IMAGE_MAX_PIXELS", "0"),
        ("CHAT_IMAGE_DECODES", "0"),
        ("CHAT_UPLOAD_QUOTA_BYTES", "1GiB"),
        ("CHAT_UPLOAD_QUOTA_BYTES", "-1"),
    ],
)
def test_bad_file_settings_fail_loudly(name, raw):
    assert name in refused(DJANGO_SECRET_KEY=SECRET, **{name: raw})


def test_a_bad_s3_addressing_style_fails_loudly():
    stderr = refused(
        DJANGO_SECRET_KEY=SECRET, CHAT_S3_BUCKET="b", CHAT_S3_ADDRESSING_STYLE="sideways"
    )
    assert "CHAT_S3_ADDRESSING_STYLE" in stderr


@pytest.mark.parametrize("raw", ["English", "pg_catalog.english", "english;drop", "", " "])
def test_search_language_is_a_plain_name(raw):
    if raw.strip():
        assert "CHAT_SEARCH_LANGUAGE" in refused(DJANGO_DEBUG="1", CHAT_SEARCH_LANGUAGE=raw)
    else:
        result = run(
            ["-c", "import chatsite.settings as s; print(s.CHAT_SEARCH_LANGUAGE)"],
            DJANGO_DEBUG="1",
            CHAT_SEARCH_LANGUAGE=raw,
        )
        assert result.stdout.strip() == "english"


def test_env_example_mirrors_the_variables_the_settings_headers_list():
    headers = {
        name: (BASE_DIR / "chatsite" / name).read_text().split('"""')[1]
        for name in ("settings.py", "chat_settings.py")
    }
    listed = {
        name: set(re.findall(r"^ {4}([A-Z][A-Z0-9_]+) ", header, re.MULTILINE))
        for name, header in headers.items()
    }
    example = (BASE_DIR / ".env.example").read_text()
    mirrored = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert "DATABASE_PGBOUNCER" in listed["settings.py"]
    assert "CHAT_RATE_LIMIT" in listed["chat_settings.py"]
    # Each variable is told of in one header.
    assert listed["settings.py"].isdisjoint(listed["chat_settings.py"])
    assert listed["settings.py"] | listed["chat_settings.py"] == mirrored
