"""Moderation that reaches open sockets at once, on every worker.

Whatever way an account or a room is changed (the admin, a shell, a view),
these receivers tell the sockets it concerns once the change has committed:

- a user deactivated or deleted: every socket of theirs closes with 4403;
- a password changed: every socket closes with 4401 (sessions and tokens
  made with the old password no longer authenticate);
- a logout: the sockets of that session close with 4401;
- a member removed from a private or direct room (by an owner, leaving, the
  admin, or any delete of a Membership row): their sockets to it close with
  4404, as if it had never existed for them, and their pages' own sockets
  (chat/sockets/me.py) send `room.removed`; a member added or a role changed: their
  pages read the room's entry again (`room`, with their role);
- a room renamed, archived or made private: open sockets get a `room` frame,
  and those of users who may no longer read it close with 4404;
- a broadcast room closed to viewers (or made another kind): the sockets of
  viewers who are not signed in close with 4401, as a new one would be;
- a mute made, changed or deleted: the user's room sockets each send a `mute`
  frame with what holds in their room now (the page disables its composer).

`Moderation` is the receiving half: what a room socket does with each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.http import HttpRequest

from chat.actions.outbox import send_on_commit
from chat.domain import events
from chat.domain.access import still_readable
from chat.domain.mutes import mute_state
from chat.models import SERVICE_FIELDS, Membership, Mute, Room
from chat.platform.db import database_sync_to_async
from chat.platform.groups import (
    ROOMS_GROUP,
    me_group_name,
    notes_group_name,
    room_group_name,
    user_group_name,
)
from chat.protocol import CloseCode


def account_before_save(sender: Any, instance: Any, update_fields: Any, **kwargs: Any) -> None:
    """Note on the instance whether this save ends the user's sockets, and with what code."""
    instance._chat_close_code = None
    if instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # a login's last_login update, say
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["is_active"] and not instance.is_active:
        instance._chat_close_code = CloseCode.FORBIDDEN
    elif before["password"] != instance.password:
        instance._chat_close_code = CloseCode.UNAUTHENTICATED


def account_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    code = getattr(instance, "_chat_close_code", None)
    if code is not None:
        send_on_commit(user_group_name(instance.pk), events.chat_user_closed(code=code))


def account_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    send_on_commit(user_group_name(instance.pk), events.chat_user_closed(code=CloseCode.FORBIDDEN))


def session_ended(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Logging out closes the sockets of that session (not the user's other ones)."""
    session_key = request.session.session_key
    if user is not None and session_key:
        send_on_commit(
            user_group_name(user.pk),
            events.chat_user_closed(code=CloseCode.UNAUTHENTICATED, session_key=session_key),
        )


def room_saved(
    sender: Any, instance: Room, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    if created:
        # Nobody is connected to it yet; every reader's page hears of it (chat/sockets/me.py).
        send_on_commit(ROOMS_GROUP, events.chat_attention(room_id=instance.pk))
        return
    if update_fields is not None and set(update_fields) <= SERVICE_FIELDS:
        return  # a message's number or the state: told in frames of their own

    def event() -> dict[str, Any]:
        # Built at commit: the admin saves members after the room, in one transaction.
        room = Room.objects.get(pk=instance.pk)
        member_ids = None
        if room.kind in (Room.Kind.PRIVATE, Room.Kind.DIRECT):
            member_ids = list(room.members.values_list("pk", flat=True))
        return events.chat_room_changed(room, member_ids=member_ids)

    # The room's sockets and its notes' editors hear the same (chat/notes/room.py).
    send_on_commit(instance.group_name, event)
    send_on_commit(notes_group_name(instance.pk), event)


def members_added(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """Members added through the relation (`room.members.add`, either side) hear of the
    room on their pages (chat/sockets/me.py), as a new direct conversation does.

    (The relation adds its rows in bulk, with no post_save; removals are told by
    membership_deleted, which sees every deletion, however made.)
    """
    if action != "post_add" or not pk_set:
        return
    added = (
        [(pk, instance.pk) for pk in pk_set] if reverse else [(instance.pk, pk) for pk in pk_set]
    )
    for room_id, user_id in added:
        send_on_commit(me_group_name(user_id), events.chat_attention(room_id=room_id))


def membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    """A membership made or its role changed (the actions, the admin's inline): the
    person's pages read the room again (its entry carries their role)."""
    send_on_commit(me_group_name(instance.user_id), events.chat_attention(room_id=instance.room_id))


def membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    """A member removed, however (an owner, leaving, the admin, `room.members.remove` or
    `clear`, from either side): their sockets to a private or direct room close with
    4404, as if it had never existed for them, and their pages drop it or, for a
    public room, show it as one they are not in."""
    lost = events.chat_access_lost(room_id=instance.room_id, user_ids=[instance.user_id])
    send_on_commit(room_group_name(instance.room_id), lost)
    send_on_commit(notes_group_name(instance.room_id), lost)


def mute_saved(sender: Any, instance: Mute, **kwargs: Any) -> None:
    """A mute began, changed or was lifted: the user's open rooms learn what holds now."""
    send_on_commit(user_group_name(instance.user_id), events.chat_mute_changed())


def connect() -> None:
    """Connect the receivers (ChatConfig.ready)."""
    user_model = get_user_model()
    pre_save.connect(account_before_save, sender=user_model, dispatch_uid="chat-account-before")
    post_save.connect(account_saved, sender=user_model, dispatch_uid="chat-account-saved")
    post_delete.connect(account_deleted, sender=user_model, dispatch_uid="chat-account-deleted")
    user_logged_out.connect(session_ended, dispatch_uid="chat-session-ended")
    post_save.connect(room_saved, sender=Room, dispatch_uid="chat-room-saved")
    m2m_changed.connect(members_added, sender=Membership, dispatch_uid="chat-members-added")
    post_save.connect(membership_saved, sender=Membership, dispatch_uid="chat-membership-saved")
    post_delete.connect(
        membership_deleted, sender=Membership, dispatch_uid="chat-membership-deleted"
    )
    post_save.connect(mute_saved, sender=Mute, dispatch_uid="chat-mute-saved")
    post_delete.connect(mute_saved, sender=Mute, dispatch_uid="chat-mute-deleted")


class Moderation:
    """What a room socket does with each moderation event, on every worker, given its room
    (changed in place), its user, and its send and close.

    (The end of an account or a session closes every socket alike: chat/sockets/base.py.)
    """

    def __init__(
        self,
        *,
        room: Room,
        user: Any,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[CloseCode], Awaitable[None]],
    ) -> None:
        self.room = room
        self.user = user
        self.send = send
        self.close = close

    async def room_changed(self, event: dict[str, Any]) -> None:
        self.room.kind = event["kind"]
        self.room.archived = event["archived"]
        self.room.live_comments = event["live_comments"]
        self.room.public_viewing = event["public_viewing"]
        user = self.user
        if not still_readable(
            user=user,
            kind=event["kind"],
            public_viewing=event["public_viewing"],
            member_ids=event["member_ids"],
        ):
            # A viewer not signed in is asked to log in; for a person it is gone.
            code = CloseCode.NOT_FOUND if user.is_authenticated else CloseCode.UNAUTHENTICATED
            return await self.close(code)
        await self.send(event["text"])

    async def access_lost(self, event: dict[str, Any]) -> None:
        if self.room.kind != Room.Kind.PUBLIC and self.user.pk in event["user_ids"]:
            await self.close(CloseCode.NOT_FOUND)

    async def mute_changed(self, event: dict[str, Any]) -> None:
        """Tell the page its mute in this room as it stands now (a `mute` frame)."""
        room, user = self.room, self.user
        if not user.is_authenticated:
            return
        mute = await database_sync_to_async(mute_state)(user_id=user.pk, room_id=room.pk)
        await self.send(events.mute_frame(mute))
