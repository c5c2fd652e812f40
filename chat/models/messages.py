"""Messages, numbered per room, and what hangs on them: reactions and mentions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

from chat.models.rooms import Room

if TYPE_CHECKING:
    from chat.models.files import Attachment


class MessageQuerySet(models.QuerySet["Message"]):
    def visible(self) -> MessageQuerySet:
        """Messages that were not deleted."""
        return self.filter(deleted_at__isnull=True)

    def for_wire(self) -> MessageQuerySet:
        """With everything a message object on the wire shows (payloads.message_payload)."""
        # Imported here: chat.models.files imports Message for its foreign key.
        from chat.models.files import Attachment

        return self.select_related("room", "author", "reply_to__author").prefetch_related(
            models.Prefetch("reactions", Reaction.objects.select_related("user")),
            models.Prefetch("mentions", Mention.objects.select_related("user")),
            models.Prefetch("attachments", Attachment.objects.order_by("pk")),
        )

    def page(
        self, *, room_id: int, limit: int, before: int | None = None, after: int | None = None
    ) -> tuple[list[Message], bool]:
        """A keyset page of a room's messages, ascending; (messages, has_more).

        With `after`: the `limit` oldest after it, has_more saying newer ones exist.
        Otherwise: the `limit` newest (before `before`), has_more saying older exist.
        """
        rows = self.visible().filter(room_id=room_id).for_wire()
        if before is not None:
            rows = rows.filter(number__lt=before)
        if after is not None:
            forward = list(rows.filter(number__gt=after).order_by("number")[: limit + 1])
            return forward[:limit], len(forward) > limit
        backward = list(rows.order_by("-number")[: limit + 1])
        return backward[:limit][::-1], len(backward) > limit

    def history(
        self,
        *,
        room_id: int,
        limit: int,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
    ) -> HistoryPage:
        """A page of history as sockets and the API answer it: before an id (or the
        newest), after one, or around one (a permalink; `before` and `after` unused).

        `has_more` is what v1 says: older ones exist, or with `after` newer ones;
        `has_older` and `has_newer` are told where the page knows them.
        """
        if around is None:
            messages, has_more = self.page(room_id=room_id, before=before, after=after, limit=limit)
            newer = has_more if after is not None else None
            return HistoryPage(messages, has_more=has_more, has_newer=newer)
        # Half the page is older than `around` and half starts at it, so a deleted or
        # unknown id still gets the messages that surround it; near either end of
        # the room the other side fills the page.
        older, has_older = self.page(room_id=room_id, before=around, limit=limit)
        newer_page, has_newer = self.page(room_id=room_id, after=around - 1, limit=limit)
        newer_count = min(len(newer_page), max(limit - limit // 2, limit - len(older)))
        older_count = min(len(older), limit - newer_count)
        has_older = has_older or older_count < len(older)
        return HistoryPage(
            older[len(older) - older_count :] + newer_page[:newer_count],
            has_more=has_older,
            has_older=has_older,
            has_newer=has_newer or newer_count < len(newer_page),
        )


@dataclass(frozen=True)
class HistoryPage:
    """Messages of a room, ascending, and whether more lie each side (None: not asked)."""

    messages: list[Message]
    has_more: bool
    has_older: bool | None = None
    has_newer: bool | None = None

    def sides(self) -> dict[str, bool]:
        """`has_older` and `has_newer`, where known: the extension's fields of an answer."""
        known = {"has_older": self.has_older, "has_newer": self.has_newer}
        return {name: value for name, value in known.items() if value is not None}


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # The message's `id` on the wire: its place in the room, without holes.
    number = models.PositiveBigIntegerField(editable=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    edited = models.BooleanField(default=False)
    # A deleted message keeps its number; history and replay leave it out.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # NULL, not "": messages without a client_id stay outside the unique constraint.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The message this one answers, in the same room (writes.message_create checks).
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    # Counts every change of the message's reactions, under its row lock: a socket
    # passes on only reactions newer than the last it told (as presence does).
    reactions_version = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["room", "number"]
        constraints = [
            # Also the index of every per-room read: keyset pages, replay, gap filling.
            models.UniqueConstraint(fields=["room", "number"], name="message_room_number"),
            models.UniqueConstraint(
                fields=["room", "author", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_room_author_client_id",
            ),
        ]
        indexes = [
            # The rate limit counts an author's newest messages (chat/domain/writes.py).
            models.Index(fields=["author", "created"], name="message_author_created"),
        ]

    def __str__(self) -> str:
        return f"{self.room.slug}#{self.number}"


def wire_relations_set(
    message: Message,
    *,
    reactions: list[Reaction],
    mentions: list[Mention],
    attachments: list[Attachment] | None = None,
) -> None:
    """Give a message just written what for_wire() would have prefetched.

    A new message has no reactions, and the mentions and attachments its author
    just stored: reading them back would cost queries on every send.
    """
    message._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "reactions": reactions,
        "mentions": mentions,
        "attachments": attachments or [],
    }


class Reaction(models.Model):
    """One person's emoji on a message; adding the same one twice is a no-op."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_reactions"
    )
    emoji = models.CharField(max_length=32)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="reaction_message_user_emoji"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} on {self.message_id} by {self.user_id}"


class Mention(models.Model):
    """A member named as @username in a message: counted apart from unread, and notified."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_mentions"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="mention_message_user"),
        ]
        indexes = [models.Index(fields=["user", "message"], name="mention_user_message")]

    def __str__(self) -> str:
        return f"@{self.user_id} in {self.message_id}"
