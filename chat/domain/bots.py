"""Bot accounts and their API keys: how code outside the site publishes into rooms.

A bot account is marked as one (models.Bot): it never logs in (chat.domain.accounts
refuses it), no person may sign up under its name, and a person's account never
becomes one. A bot is made by name when first needed (`bot_account`): a name a
person holds already, in any case, is refused.

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
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat.errors import ChatError
from chat.models import Bot, BotKey, Room

_KEY = re.compile(r"chatbot_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    """Whether a Bearer value is shaped like a bot key (and not a user's token)."""
    return token.startswith("chatbot_")


def is_bot(user: object) -> bool:
    """Whether `user` is a bot account (never a person, never logged in)."""
    if getattr(user, "pk", None) is None:
        return False
    # The mark read with select_related("chat_bot") costs no query here.
    return hasattr(user, "chat_bot")


def bot_user_new(username: str) -> User:
    """A new account for a bot, saved, with no password to log in with; the caller
    marks it (models.Bot) in the same transaction."""
    user = get_user_model()(username=username)
    user.set_unusable_password()
    user.save()
    return user


def bot_account(username: str) -> User:
    """The bot account `username`, made (with no password) when no account has that name.

    A person's account of that name, in any case, is never used: ChatError(forbidden),
    so that nobody who signs up as a bot's name ever speaks for it.
    """
    for _ in range(2):
        holders = list(get_user_model().objects.filter(username__iexact=username))
        for holder in holders:
            if holder.get_username() == username and is_bot(holder):
                return holder
        if holders:
            raise ChatError(
                "forbidden",
                f"{username!r} is a person's account, not a bot: give the bot a name of its own",
            )
        try:
            with transaction.atomic():
                user = bot_user_new(username)
                Bot.objects.create(user=user)
            return user
        except IntegrityError:
            continue  # made at the same moment elsewhere: look again
    raise ChatError("unavailable", "the bot account could not be made; try again")


def bot_key_new(key: BotKey) -> str:
    """Give an unsaved key its prefix and digest; the key itself, to be shown once."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key.prefix, key.digest = prefix, _digest(secret)
    return f"chatbot_{prefix}_{secret}"


def bot_key_issue(*, user: User, rooms: list[Room], name: str = "") -> tuple[BotKey, str]:
    """A new key for the bot `user`, publishing into `rooms`: (the key's row, the key,
    shown once). A person's account gets no key: ChatError(forbidden)."""
    if not is_bot(user):
        raise ChatError("forbidden", "only bot accounts have keys")
    key = BotKey(user=user, name=name)
    shown = bot_key_new(key)
    with transaction.atomic():
        key.save()
        key.rooms.set(rooms)
    return key, shown


def bot_key_check(token: str) -> BotKey | None:
    """The live key `token` is; None for a wrong or revoked key, an inactive bot, or a
    key of an account that is not a bot (made before accounts were marked)."""
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    key = (
        BotKey.objects.select_related("user")
        .filter(prefix=match[1], user__chat_bot__isnull=False)
        .first()
    )
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
