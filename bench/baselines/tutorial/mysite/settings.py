"""The Channels tutorial's project (`django-admin startproject mysite` plus Tutorial Parts 1-3).

Only what the benchmark needs differs from the generated file, each marked
"Bench:": the secret key and the database come from the environment, DEBUG is
off, and the Redis host entry is REDIS_URL with no socket timeout. The channel
layer is the tutorial's: channels_redis.core.RedisChannelLayer, its defaults
otherwise (capacity 100, expiry 60 s, group_expiry 86400 s).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Bench: from the environment rather than a key written into the file.
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
# Bench: off, as a deployment would run it.
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "daphne",
    "chat",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"

# Bench: SQLite in a path the bench chooses. The socket path reads no table:
# a socket without a session cookie gets an anonymous user without a query.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TUTORIAL_DB", BASE_DIR / "db.sqlite3"),
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channels
ASGI_APPLICATION = "mysite.asgi.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # Bench: the tutorial writes [("127.0.0.1", 6379)]. With redis-py 8
            # (the site's pin) every connection then has a 5 s socket timeout
            # while the layer's idle blocking read also waits 5 s: every socket
            # idle for ~10 s dies with 1011. Without the timeout the tutorial
            # works as written; nothing else about the layer changes.
            "hosts": [
                {
                    "address": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                    "socket_timeout": None,
                }
            ],
        },
    },
}
