"""chatsite.settings, loaded in a fresh interpreter with a controlled environment: the
secret and debug, the chat limits, the database and channel layer, the deployment
check and .env.example. Files and their storage are in test_settings_files.py.
"""

from __future__ import annotations

import re
import secrets
import sqlite3

import pytest

from tests.settings_helpers import BASE_DIR, SECRET, load, refused, run

# Each test loads the settings in a fresh interpreter: the slow part of the
# unit tier, left out of `make test-fast`.
pytestmark = pytest.mark.processes


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
