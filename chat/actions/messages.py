"""Messages: sent, edited and deleted, by their authors, publishers and moderators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from chat.actions import plain
from chat.actions.outbox import Outbox, run, send_on_commit
from chat.domain import events, writes
from chat.domain.inputs import body_clean, client_id_clean
from chat.domain.mentions import mentioned_names
from chat.models import Message, Room
from chat.platform import outages
from chat.platform.groups import room_group_name


@dataclass(frozen=True)
class Sent:
    """A message sent: stored now (`created`), or found stored already (a resend);
    the broadcast it made (None for a resend, which broadcasts nothing); the message
    itself, except on the socket's plain path, which builds no model instance."""

    number: int
    created: bool
    event: dict[str, Any] | None
    message: Message | None = None

    @property
    def acknowledgement(self) -> str:
        """The `message` frame its author gets, with the client_id."""
        if self.event is not None:
            return str(self.event["author_text"])
        assert self.message is not None
        return events.message_frame(self.message, for_author=True)


def message_send(
    *,
    room_id: int,
    author: User,
    body: object,
    client_id: object,
    reply_to: object = None,
    attachments: object = None,
    publisher: bool = False,
) -> Sent:
    """Store a message under its room's next number and broadcast it on commit
    (chat.domain.writes.message_create decides, refuses and numbers)."""
    message, created = writes.message_create(
        room_id=room_id,
        author=author,
        body=body,
        client_id=client_id,
        reply_to=reply_to,
        publisher=publisher,
        attachments=attachments,
    )
    if not created:
        return Sent(number=message.number, created=False, event=None, message=message)
    event = events.chat_message(message)
    send_on_commit(room_group_name(room_id), event)
    return Sent(number=message.number, created=True, event=event, message=message)


async def message_send_async(
    *,
    room: Room,
    author: User,
    body: object,
    client_id: object,
    reply_to: object = None,
    attachments: object = None,
) -> tuple[Sent, Outbox]:
    """A socket's message: a plain one on PostgreSQL stored in one round trip on the
    event loop (chat.actions.plain); any other, or one that stored nothing there (a resend,
    a refusal), by message_send on the database thread, which says why."""
    if reply_to is None and not attachments and plain.usable():
        text = body_clean(body)
        cleaned_id = client_id_clean(client_id)
        if not mentioned_names(text):
            stored = await plain.plain_store(
                room_id=room.pk,
                author_id=author.pk,
                may_broadcast=author.is_staff,
                body=text,
                client_id=cleaned_id,
            )
            if stored is not None:
                outages.DATABASE.served()
                event = events.plain_message_event(
                    number=stored.number,
                    room_id=room.pk,
                    room_slug=stored.room_slug,
                    author_id=author.pk,
                    username=author.get_username(),
                    body=text,
                    created=stored.created,
                    client_id=cleaned_id,
                )
                sent = Sent(number=stored.number, created=True, event=event)
                return sent, [(room_group_name(room.pk), event)]
    return await run(
        message_send,
        room_id=room.pk,
        author=author,
        body=body,
        client_id=client_id,
        reply_to=reply_to,
        attachments=attachments,
    )


def message_edit(*, room_id: int, number: object, user: User, body: object) -> writes.Edited:
    """The author's new body, and the mentions it makes; broadcast on commit."""
    edited = writes.message_edit(room_id=room_id, number=number, user=user, body=body)
    _edited_send(edited)
    return edited


def message_delete(
    *, room_id: int, number: object, user: User, moderating: bool = False
) -> writes.Deleted:
    """Delete a message, keeping its number (the author, or staff; `moderating`: the
    admin, in archived rooms too); broadcast on commit."""
    deleted = writes.message_delete(
        room_id=room_id, number=number, user=user, moderating=moderating
    )
    send_on_commit(
        room_group_name(room_id),
        events.chat_message_deleted(deleted.message, mention_ids=deleted.mention_ids),
    )
    return deleted


def message_moderate(*, message_id: int, body: object) -> writes.Edited:
    """A moderator's new body for any message (the admin): marked edited, its mentions
    stored again, and open pages told, unless the message is deleted."""
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related("room").get(pk=message_id)
        message.body = body_clean(body, may_be_empty=message.attachments.exists())
        message.edited = True
        message.save(update_fields=["body", "edited"])
        edited = writes.mentions_refresh(message)
        if message.deleted_at is None:
            _edited_send(edited)
    return edited


def _edited_send(edited: writes.Edited) -> None:
    send_on_commit(
        room_group_name(edited.message.room_id),
        events.chat_message_edited(
            edited.message, mentions=edited.mentions, mentions_changed=edited.mentions_changed
        ),
    )
