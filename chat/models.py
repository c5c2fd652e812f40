"""Rooms, their messages and each reader's place in them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Now

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

SLUG_PATTERN = r"[a-z0-9-]{1,50}"
slug_validator = RegexValidator(
    rf"\A{SLUG_PATTERN}\Z", "Use 1 to 50 lowercase letters, digits or hyphens."
)


def room_group_name(room_id: int) -> str:
    """The channel-layer group of a room: from its primary key, never user text."""
    return f"room-{room_id}"


def user_group_name(user_id: int) -> str:
    """The channel-layer group of every socket of one user, in any room."""
    return f"user-{user_id}"


def me_group_name(user_id: int) -> str:
    """The channel-layer group of one user's page sockets (/ws/me/): their counts changed."""
    return f"me-{user_id}"


# The channel-layer group of every page's own socket (/ws/me/): new rooms.
ROOMS_GROUP = "rooms"


# Room fields only services write, under the room's row lock.
SERVICE_FIELDS = frozenset({"last_message_number", "state", "state_version"})


class RoomQuerySet(models.QuerySet["Room"]):
    def visible_to(self, user: User | AnonymousUser) -> RoomQuerySet:
        """Public and broadcast rooms, and the private and direct rooms the user is a
        member of; for someone not signed in, the broadcast rooms open to viewers."""
        if not user.is_authenticated:
            return self.filter(kind=Room.Kind.BROADCAST, public_viewing=True)
        readable = Q(kind__in=[Room.Kind.PUBLIC, Room.Kind.BROADCAST]) | Q(members=user)
        return self.filter(readable).distinct()

    def with_attention(self, user: User | AnonymousUser) -> RoomQuerySet:
        """Annotate what the user has yet to read: `last_read` (their mark), `unread`
        (others' messages after it), `mentions` (those naming the user) and `notify`
        (their setting, or None for the room's default)."""
        if not user.is_authenticated:
            return self.none()
        last_read = ReadState.objects.filter(room=OuterRef("pk"), user_id=user.pk).values(
            "last_read_number"
        )[:1]

        def count(messages: QuerySet[Message]) -> Coalesce:
            counted = messages.order_by().values("room").annotate(count=Count("pk")).values("count")
            return Coalesce(Subquery(counted), Value(0))

        after_mark = (
            Message.objects.visible()
            .filter(room=OuterRef("pk"), number__gt=OuterRef("last_read"))
            .exclude(author_id=user.pk)
        )
        notify = NotifySetting.objects.filter(room=OuterRef("pk"), user_id=user.pk).values(
            "notify"
        )[:1]
        return self.annotate(
            last_read=Coalesce(Subquery(last_read), Value(0)),
            unread=count(after_mark),
            mentions=count(after_mark.filter(mentions__user_id=user.pk)),
            notify=Subquery(notify),
        )


class Room(models.Model):
    class Kind(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"
        DIRECT = "direct", "Direct"
        # Everyone signed in reads it; only publishers (bots with a key for it,
        # and staff) post; a viewer count instead of who is online.
        BROADCAST = "broadcast", "Broadcast"

    name = models.CharField(max_length=100)
    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PUBLIC)
    archived = models.BooleanField(default=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        through="Membership",
        related_name="chat_rooms",
        help_text="Who may read and write a private or direct room.",
    )
    public_viewing = models.BooleanField(
        default=False,
        db_default=False,
        help_text="A broadcast room only: people who are not signed in may watch (never post).",
    )
    live_comments = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Viewers may send live comments: shown as they come, never stored.",
    )
    # A small JSON value publishers set (a score, a quote), and its version:
    # every change counts, under the room's row lock (chat.actions.publish.room_state_set).
    state = models.JSONField(null=True, blank=True, editable=False)
    state_version = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    # The number of the newest message: messages are numbered 1, 2, 3 ... per room,
    # allocated under a lock on this row (chat.domain.writes.message_create).
    last_message_number = models.PositiveBigIntegerField(default=0, editable=False)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(slug__regex=rf"^{SLUG_PATTERN}$"), name="room_slug_format"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Never write SERVICE_FIELDS from a possibly stale instance.

        The counter moves only under the row lock in writes.message_create,
        and the state in publish.room_state_set; a full save (the admin's) would
        roll them back and jam the room.
        """
        if (
            self.pk is not None
            and kwargs.get("update_fields") is None
            and not kwargs.get("force_insert")
        ):
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in SERVICE_FIELDS
            ]
        super().save(*args, **kwargs)

    @property
    def group_name(self) -> str:
        """The channel-layer group of everyone connected to this room."""
        return room_group_name(self.pk)


class Role(models.TextChoices):
    """A member's part in a room: owners run it (chat.actions.membership)."""

    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """One person in one room, as an owner or a member.

    A private or direct room is read by its members alone; a public room's
    members are those who joined it (the lobby's "Your rooms"). Rows made or
    deleted any way (the actions, the admin's inline, `room.members.remove`)
    reach open pages through chat.sockets.moderation's receivers.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "user"]
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="membership_room_user"),
        ]
        indexes = [models.Index(fields=["user", "room"], name="membership_user_room")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.role})"


class InviteQuerySet(models.QuerySet["Invite"]):
    def usable(self) -> InviteQuerySet:
        """Invites not revoked, not expired and not used up."""
        return (
            self.filter(revoked__isnull=True)
            .filter(Q(expires__isnull=True) | Q(expires__gt=Now()))
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=models.F("max_uses")))
        )


class Invite(models.Model):
    """A link that lets whoever holds it join a room: /invite/<code>/.

    The code is unguessable (secrets.token_urlsafe); an owner may give it an
    end, a number of uses, and revoke it.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invites")
    code = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_invites",
    )
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    revoked = models.DateTimeField(null=True, blank=True)

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"invite to {self.room_id}"


class MessageQuerySet(models.QuerySet["Message"]):
    def visible(self) -> MessageQuerySet:
        """Messages that were not deleted."""
        return self.filter(deleted_at__isnull=True)

    def for_wire(self) -> MessageQuerySet:
        """With everything a message object on the wire shows (events.message_payload)."""
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


def notes_group_name(room_id: int) -> str:
    """The channel-layer group of a room's shared notes (chat/notes/)."""
    return f"notes-{room_id}"


class NotesDocument(models.Model):
    """A room's shared notes (chat/notes/): a snapshot and the count of its updates.

    Updates are numbered 1, 2, 3 ... per room, allocated under a lock on this
    row (chat.actions.notes.notes_append). `snapshot` holds the document as of
    update `snapshot_number` (a Yjs update, v1 encoding); the updates after it
    are `NotesUpdate` rows. A room has no row until its notes are first edited.
    """

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="notes")
    last_number = models.PositiveBigIntegerField(default=0)
    snapshot = models.BinaryField(default=b"")
    snapshot_number = models.PositiveBigIntegerField(default=0)
    changed = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "room's notes"
        verbose_name_plural = "rooms' notes"

    def __str__(self) -> str:
        return f"notes of {self.room_id}"


class NotesUpdate(models.Model):
    """One accepted update of a room's notes (a Yjs update), stored before anyone hears of it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="notes_updates")
    number = models.PositiveBigIntegerField()
    data = models.BinaryField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "number"]
        constraints = [
            models.UniqueConstraint(fields=["room", "number"], name="notes_update_room_number"),
        ]

    def __str__(self) -> str:
        return f"notes update {self.number} of {self.room_id}"
