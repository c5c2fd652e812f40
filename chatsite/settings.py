"""Settings for the chat site, read from the environment.

Here: Django's settings and the services the site stands on (the database,
Redis and the channel layer, file storage). The chat's own limits, rates and
timings are in chatsite/chat_settings.py, whose every name this module imports
and so is a setting too; the helpers that read and check a variable are in
chatsite/env.py.

Every variable read here (mirrored in .env.example, with those that
chatsite/chat_settings.py lists):

    DJANGO_SECRET_KEY          required unless DJANGO_DEBUG is on
    DJANGO_DEBUG               "1"/"true" turns debug on; default off
    DJANGO_ALLOWED_HOSTS       comma-separated; default "localhost,127.0.0.1,[::1]"
    DJANGO_CSRF_TRUSTED_ORIGINS comma-separated origins, e.g. "https://chat.example.com"
    DJANGO_HTTPS               "1" behind HTTPS: secure cookies, HSTS, SSL redirect,
                               trust X-Forwarded-Proto from the proxy; default off
    DJANGO_HSTS_SECONDS        HSTS max-age when DJANGO_HTTPS is on; default 31536000
    DJANGO_LOG_LEVEL           default "INFO"
    DATABASE_URL               default sqlite:///<repo>/db.sqlite3; postgres://... for many workers
    DATABASE_PGBOUNCER         "1" when DATABASE_URL is a PgBouncer in transaction mode
                               (docs/scaling.md): no prepared statements, no server-side
                               cursors; default off. Only with a postgres:// URL
    REDIS_URL                  the channel layer's Redis; default redis://127.0.0.1:6379/0.
                               Several, comma-separated, are shards: groups, queues and
                               every key spread over them by a consistent hash
    REDIS_SENTINELS            Sentinel instead of REDIS_URL: "host:port,host:port,..."
    REDIS_SENTINEL_MASTERS     with REDIS_SENTINELS: the master name of each shard,
                               comma-separated (one name: one shard)
    REDIS_SENTINEL_PASSWORD    the Sentinels' password, if they need one
    CHAT_LAYER_PREFIX          key prefix of the channel layer in Redis; default "chat"
    CHAT_LAYER_CAPACITY        messages a channel may queue before the layer drops; default 1000
    CHAT_GROUP_EXPIRY          seconds a group membership lives; default 86400 (must be at
                               least daphne's --websocket_timeout, see deploy/)

  Files (docs/files.md):
    DJANGO_MEDIA_ROOT          the directory uploaded files are kept in (the default storage,
                               FileSystemStorage); default <repo>/var/media
    CHAT_FILES_ACCEL_REDIRECT  behind nginx: the prefix of its `internal` location that
                               serves DJANGO_MEDIA_ROOT, e.g. "/protected-media/": a file
                               is then handed to nginx with X-Accel-Redirect once access is
                               checked; default empty (the worker streams it)
    CHAT_S3_BUCKET             set: files are kept in this bucket of an S3-compatible store
                               (django-storages' S3 backend) instead of DJANGO_MEDIA_ROOT
    CHAT_S3_ENDPOINT_URL       the store's URL (MinIO, Ceph, R2, ...); default AWS S3
    CHAT_S3_REGION             the bucket's region; default boto3's
    CHAT_S3_ACCESS_KEY_ID      the store's credentials; both unset: boto3's own chain
    CHAT_S3_SECRET_ACCESS_KEY  (AWS_* variables, an instance role, ...)
    CHAT_S3_ADDRESSING_STYLE   "path" or "virtual"; default boto3's choice
    CHAT_S3_URL_SECONDS        lifetime of the signed URLs a file is redirected to; default 60
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from chat.platform.redis.config import layer_hosts, redis_shards
from chatsite.chat_settings import *  # noqa: F403
from chatsite.chat_settings import CHAT_UPLOAD_MAX_BYTES
from chatsite.env import env_bool, env_int, env_list

# Lets the admin classes be written with type parameters (ModelAdmin[Room]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-debug-only-key"  # noqa: S105  (debug only, never served)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chat.web.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chat.web.context_processors.protocol",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Every database call of the sockets runs on one thread per worker
        # (Channels' database_sync_to_async): its connection stays open between
        # calls, checked before reuse, instead of a new one for each message.
        # HTTP requests each run on a thread of their own under ASGI and close
        # theirs when they finish (chat.apps), or they would leak one a request.
        # (psycopg's pool was tried: after a PostgreSQL outage its reconnect
        # backoff kept every worker unavailable for many seconds more.)
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite, the default of `make run`, is written by every worker process:
    # - WAL: readers never wait for a writer, nor a writer for readers;
    # - IMMEDIATE: a transaction takes the write lock when it begins, so that
    #   it never has to upgrade a read lock later, which SQLite refuses at once
    #   ("database is locked") whatever the busy timeout;
    # - a busy timeout of 20 s: writers queue for the lock instead of failing.
    # Every write is one short transaction, so the queue moves in milliseconds.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL",
        }
    )

# PgBouncer in transaction mode (docs/scaling.md) gives each transaction whichever
# server connection is free: nothing may outlive a transaction on the server.
# - Prepared statements: PgBouncer 1.18 (Debian 12's) cannot keep them across
#   connections, and psycopg prepares a query once it ran prepare_threshold times.
#   Django already defaults it to None and binds parameters on the client, but
#   a DATABASE_URL may ask otherwise (?prepare_threshold=5&server_side_binding=true).
# - Server-side cursors: QuerySet.iterator() (the admin's select lists among its
#   callers) declares a cursor WITH HOLD outside a transaction and fetches from
#   it in the next ones, which may reach another server connection.
# What else is session state stays within a transaction (set_config(..., true)
# in chat.search.ranking) or is tracked by PgBouncer itself (the TimeZone Django sets).
DATABASE_PGBOUNCER = env_bool("DATABASE_PGBOUNCER")
if DATABASE_PGBOUNCER:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_PGBOUNCER is on but DATABASE_URL is not a postgres:// URL:"
            " point DATABASE_URL at PgBouncer, or unset DATABASE_PGBOUNCER"
        )
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The shards (chat/platform/redis/config.py): what is wrong with them is refused by the
# system check chat.E010 and by every worker as it starts (chatsite/asgi.py).
CHAT_REDIS = redis_shards(os.environ)
CHAT_LAYER_PREFIX = os.environ.get("CHAT_LAYER_PREFIX") or "chat"
CHAT_LAYER_CAPACITY = env_int("CHAT_LAYER_CAPACITY", 1000, minimum=1)
CHAT_GROUP_EXPIRY = env_int("CHAT_GROUP_EXPIRY", 86400, minimum=60)

CHANNEL_LAYERS = {
    "default": {
        # channels-redis' RedisChannelLayer, reporting lost connections (chat/platform/layers.py).
        "BACKEND": "chat.platform.layers.ChatChannelLayer",
        "CONFIG": {
            "hosts": layer_hosts(
                CHAT_REDIS,
                # redis-py 8 gives every connection a 5 s socket timeout; the
                # layer's idle blocking read waits 5 s too, so every idle
                # socket would die (4011) after ~10 s. Calls are bounded by
                # CHAT_LAYER_TIMEOUT in the consumer instead.
                socket_timeout=None,
                socket_connect_timeout=5,
                socket_keepalive=True,
            ),
            "prefix": CHAT_LAYER_PREFIX,
            # The layer silently drops group messages beyond this many queued per
            # channel; consumers fill any hole from the database (chat.sockets.room).
            "capacity": CHAT_LAYER_CAPACITY,
            "expiry": 60,
            "group_expiry": CHAT_GROUP_EXPIRY,
        },
    }
}

# Seconds a channel-layer call may take before the socket answers `unavailable`,
# and between two looks at the layer's epoch (a Redis restart closes sockets with 4012).
CHAT_LAYER_TIMEOUT = 5.0
CHAT_LAYER_CHECK_INTERVAL = 2.0

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Bot accounts never log in (chat.domain.accounts). Django's own backend stays listed
# for the sessions made before: it is never asked to check a password.
AUTHENTICATION_BACKENDS = [
    "chat.domain.accounts.PeopleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
CSRF_FAILURE_VIEW = "chat.web.views.accounts.csrf_failure"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Uploaded files (chat/files/attachments.py, docs/files.md). They are never served
# from a public URL: /files/<id>/<name> checks who asks first (MEDIA_URL is unused).
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT") or BASE_DIR / "var" / "media")
# Uploads spill from memory to a temporary file beyond this size (Django's default
# 2.5 MB), never more than one file may have.
FILE_UPLOAD_MAX_MEMORY_SIZE = min(2_621_440, CHAT_UPLOAD_MAX_BYTES)
# nginx, another user, reads them (X-Accel-Redirect), whatever the workers' umask.
FILE_UPLOAD_PERMISSIONS = 0o644
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o755
CHAT_FILES_ACCEL_REDIRECT = os.environ.get("CHAT_FILES_ACCEL_REDIRECT", "").strip()
if CHAT_FILES_ACCEL_REDIRECT and not re.fullmatch(r"/([\w.-]+/)+", CHAT_FILES_ACCEL_REDIRECT):
    raise ImproperlyConfigured(
        f"CHAT_FILES_ACCEL_REDIRECT={CHAT_FILES_ACCEL_REDIRECT!r} must be a path such as"
        " /protected-media/ (starting and ending with a slash)"
    )
CHAT_S3_BUCKET = os.environ.get("CHAT_S3_BUCKET", "").strip()
CHAT_S3_URL_SECONDS = env_int("CHAT_S3_URL_SECONDS", 60, minimum=1)
if CHAT_S3_BUCKET:
    _s3_options: dict[str, object] = {
        "bucket_name": CHAT_S3_BUCKET,
        # Private objects, reached only through signed URLs that expire soon.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": CHAT_S3_URL_SECONDS,
        "signature_version": "s3v4",
        "file_overwrite": False,
    }
    for _variable, _option in [
        ("CHAT_S3_ENDPOINT_URL", "endpoint_url"),
        ("CHAT_S3_REGION", "region_name"),
        ("CHAT_S3_ACCESS_KEY_ID", "access_key"),
        ("CHAT_S3_SECRET_ACCESS_KEY", "secret_key"),
        ("CHAT_S3_ADDRESSING_STYLE", "addressing_style"),
    ]:
        if os.environ.get(_variable, "").strip():
            _s3_options[_option] = os.environ[_variable].strip()
    if _s3_options.get("addressing_style") not in (None, "path", "virtual"):
        raise ImproperlyConfigured("CHAT_S3_ADDRESSING_STYLE must be path or virtual")
    _default_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": _s3_options,
    }
    # Images are redirected to the store: the pages' CSP lets them load from it.
    _endpoint = urlsplit(str(_s3_options.get("endpoint_url") or "https://amazonaws.com"))
    CHAT_FILES_ORIGINS = [
        f"{_endpoint.scheme}://{_endpoint.netloc}",
        f"{_endpoint.scheme}://*.{_endpoint.netloc}",
    ]
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    CHAT_FILES_ORIGINS = []

STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "chatsite.storage.StaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

HTTPS = env_bool("DJANGO_HTTPS")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # The health check is probed over plain HTTP by load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL") or "INFO"},
    "filters": {"healthz_unavailable": {"()": "chat.platform.outages.HealthzUnavailable"}},
    "loggers": {
        # channels_redis reports dropped group messages at INFO: keep them visible.
        "channels_redis": {"level": "INFO"},
        # A 503 of /healthz is an outage reported by design, not an error of the code.
        "django.request": {"filters": ["healthz_unavailable"]},
    },
}
