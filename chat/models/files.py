"""Files people upload, and the message that names each."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery

from chat.models.messages import Message


class AttachmentQuerySet(models.QuerySet["Attachment"]):
    def stored_bytes(self) -> int:
        """Bytes these attachments take in storage: each file and its thumbnail."""
        total = self.aggregate(total=models.Sum(models.F("size") + models.F("thumbnail_size")))
        return int(total["total"] or 0)

    def stored_bytes_of_each_uploader(self) -> Subquery:
        """For an annotation of users (OuterRef "pk"): the bytes of their stored files."""
        per_user = (
            self.filter(uploader=OuterRef("pk"))
            .order_by()
            .values("uploader")
            .annotate(total=models.Sum(models.F("size") + models.F("thumbnail_size")))
            .values("total")
        )
        return Subquery(per_user, output_field=models.PositiveBigIntegerField())


class Attachment(models.Model):
    """A file uploaded over HTTP, then named by one message of its uploader
    (chat/files/attachments.py).

    Until a message names it, only its uploader may fetch it, and it is deleted a
    day later (manage.py chat_uploads_cleanup). Its bytes are in the default
    storage under a random name; `name` is the cleaned name it is shown and
    downloaded as, and `content_type` what its bytes were sniffed to be.
    """

    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_attachments"
    )
    message = models.ForeignKey(
        Message,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
    )
    file = models.FileField(max_length=255)
    # Images only, and only when one could be made; empty otherwise.
    thumbnail = models.FileField(max_length=255, blank=True)
    # Its bytes, which count in its uploader's quota with the file's (0 for
    # thumbnails made before the quota was).
    thumbnail_size = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100)
    # A PNG, JPEG, GIF or WebP that Pillow read whole: shown inline.
    image = models.BooleanField(default=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        indexes = [
            # The cleanup's read: uploads no message named, oldest first.
            models.Index(
                fields=["created"],
                condition=Q(message__isnull=True),
                name="attachment_unattached",
            ),
        ]

    def __str__(self) -> str:
        return self.name
