"""Bot accounts and their API keys: how code outside the site publishes into rooms.

A key reads `chatbot_<prefix>_<secret>`. The prefix finds it; only a SHA-256
digest of the secret is kept (a key is 256 random bits, which no hash of
passwords needs to slow down), compared in constant time. A key publishes
into its rooms only, until it is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat.errors import ChatError
from chat.models import BotKey, Room

_KEY = re.compile(r"chatbot_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    """Whether a Bearer value is shaped like a bot key (and not a user's token)."""
    return token.startswith("chatbot_")


def bot_account(username: str) -> User:
    """The bot account `username`, made (with no password to log in with) when missing."""
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def bot_key_new(key: BotKey) -> str:
    """Give an unsaved key its prefix and digest; the key itself, to be shown once."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key.prefix, key.digest = prefix, _digest(secret)
    return f"chatbot_{prefix}_{secret}"


def bot_key_issue(*, user: User, rooms: list[Room], name: str = "") -> tuple[BotKey, str]:
    """A new key for `user`, publishing into `rooms`: (the key's row, the key, shown once)."""
    key = BotKey(user=user, name=name)
    shown = bot_key_new(key)
    with transaction.atomic():
        key.save()
        key.rooms.set(rooms)
    return key, shown


def bot_key_check(token: str) -> BotKey | None:
    """The live key `token` is; None for a wrong or revoked key, or an inactive bot."""
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    key = BotKey.objects.select_related("user").filter(prefix=match[1]).first()
    if (
        key is None
        or key.revoked is not None
        or not key.user.is_active
        or not hmac.compare_digest(key.digest, _digest(match[2]))
    ):
        return None
    BotKey.objects.filter(pk=key.pk).update(last_used=timezone.now())
    return key


def bot_key_room(key: BotKey, slug: str) -> Room:
    """The room `slug`, which the key must publish into: else not_found or forbidden."""
    room = Room.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if room is None:
        raise ChatError("not_found", "no such room")
    if not key.rooms.filter(pk=room.pk).exists():
        raise ChatError("forbidden", "this key does not publish into this room")
    return room


def bot_key_revoke(key: BotKey) -> None:
    """The key publishes nothing from now on."""
    BotKey.objects.filter(pk=key.pk, revoked__isnull=True).update(revoked=timezone.now())
