"""The site's settings, with the environment a test run needs by default.

Tests talk to the real services: PostgreSQL (pytest-django makes a fresh
database per run) and Redis (a key prefix of its own per run).
"""

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault("DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/chatsite")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CHAT_LAYER_PREFIX", f"test-{uuid.uuid4().hex[:12]}")

from chatsite import settings as site_settings
from chatsite.settings import *  # noqa: F403

# The one Redis of the unit tests (the integration tests start shards of their own).
REDIS_URL = os.environ["REDIS_URL"]

# CHAT_TEST_LAYER=memory (`make test-fast`): the channel layer in this process's
# memory (chat/platform/memory.py), for the tests that need no Redis: those
# marked `redis` are left out of that run, and fail on this layer.
TEST_LAYER = os.environ.get("CHAT_TEST_LAYER", "redis")
if TEST_LAYER == "memory":
    _redis_layer: Any = site_settings.CHANNEL_LAYERS["default"]["CONFIG"]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.platform.memory.MemoryChannelLayer",
            # The Redis layer's limits and expiries, which this layer also keeps.
            "CONFIG": {key: _redis_layer[key] for key in ("capacity", "expiry", "group_expiry")},
        }
    }
elif TEST_LAYER != "redis":
    raise ValueError(f"CHAT_TEST_LAYER must be redis or memory, not {TEST_LAYER!r}")

# Tests store many messages per user; the tests of the limit set their own.
CHAT_RATE_LIMIT = (10_000, 10)

# Hashing is deliberately slow; tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Unit tests render pages without a collectstatic run; the daphne processes
# of the integration tests serve the collected, hashed files.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# pytest-django drops the test database at the end of the run, which
# PostgreSQL refuses while the sockets' thread still holds a connection.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Uploaded files go to a directory of this run's own (tests that look at them
# set a fresh one each, with the `media` fixture).
MEDIA_ROOT = Path(tempfile.gettempdir()) / f"chatsite-test-media-{os.getpid()}"
