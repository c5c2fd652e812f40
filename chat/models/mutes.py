"""Moderators' mutes: who may read but not write, where, and until when."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from chat.models.rooms import Room


class MuteQuerySet(models.QuerySet["Mute"]):
    def active(self, *, room_id: int) -> MuteQuerySet:
        """Mutes in force now for the room `room_id` (a room's own, or everywhere)."""
        return self.filter(Q(room_id=room_id) | Q(room__isnull=True)).filter(
            Q(until__isnull=True) | Q(until__gt=Now())
        )


class Mute(models.Model):
    """A moderator's mute: the user may read but not write, in one room or everywhere."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_mutes"
    )
    room = models.ForeignKey(
        Room,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="mutes",
        help_text="Leave empty to mute in every room.",
    )
    until = models.DateTimeField(
        null=True, blank=True, help_text="Leave empty to mute until the mute is deleted."
    )
    reason = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = MuteQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        where = self.room.slug if self.room_id is not None and self.room else "every room"
        return f"{self.user} muted in {where}"
