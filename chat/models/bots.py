"""Bot accounts and their API keys (chat/domain/bots.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.models.rooms import Room


class Bot(models.Model):
    """The mark of a bot account (chat/domain/bots.py): it publishes with keys, never logs in,
    and no person's account ever becomes one, nor takes its name."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="chat_bot",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return str(self.user)


class BotKey(models.Model):
    """An API key of a bot account: it publishes into its rooms (chat/domain/bots.py).

    Only a digest of the secret is kept; the key is shown once, when made.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_bot_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    # The key's public part, which finds it: the key reads chatbot_<prefix>_<secret>.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    rooms = models.ManyToManyField(Room, related_name="bot_keys")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"chatbot_{self.prefix}_… ({self.user})"
