"""Each reader's place in a room: how far they read, and what they are told of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.models.rooms import Room


class ReadState(models.Model):
    """How far a user has read a room: their unread count starts after it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_read_states"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="read_states")
    last_read_number = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="read_state_user_room"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.room_id} to {self.last_read_number}"


class Notify(models.TextChoices):
    """What a reader is told of a room while its page is not in front of them."""

    ALL = "all", "Every message"
    MENTIONS = "mentions", "Mentions only"
    NONE = "none", "Nothing"


def notify_default(kind: str) -> str:
    """A direct conversation tells of every message; other rooms of mentions."""
    return Notify.ALL if kind == Room.Kind.DIRECT else Notify.MENTIONS


class NotifySetting(models.Model):
    """A reader's choice of notifications for one room (none stored: notify_default)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_notify_settings"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="notify_settings")
    notify = models.CharField(max_length=10, choices=Notify.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="notify_setting_user_room"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}: {self.notify}"
