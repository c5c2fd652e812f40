"""Rooms, who is in them (memberships) and the links that let people join (invites)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Now

from chat.platform.groups import room_group_name

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
SLUG_PATTERN = r"[a-z0-9-]{1,50}"

slug_validator = RegexValidator(
    rf"\A{SLUG_PATTERN}\Z", "Use 1 to 50 lowercase letters, digits or hyphens."
)

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
        # Imported here: those modules import Room for their foreign keys.
        from chat.models.messages import Message
        from chat.models.reading import NotifySetting, ReadState

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
