"""The JSON shapes of what the chat shows: a message (with its reply, reactions and files),
a page of history, a search result, a room as one reader sees it.

The API, the pages' data and the socket's frames (chat/domain/events.py) all give
these same objects (docs/protocol-v1.md; docs/protocol.md for the extensions).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.urls import reverse

from chat.models import Attachment, HistoryPage, Message, Reaction

if TYPE_CHECKING:
    from chat.domain.attention import RoomEntry


# A reply quotes this much of its original's first line.
SNIPPET_MAX = 100
# Who reacted, listed per emoji up to this many names (the count is exact).
REACTORS_SHOWN = 25


def snippet(body: str) -> str:
    """The first line of a body, shortened to SNIPPET_MAX code points."""
    line = body.split("\n", 1)[0].strip()
    return line if len(line) <= SNIPPET_MAX else line[: SNIPPET_MAX - 1] + "…"


def reply_payload(original: Message | None) -> dict[str, Any] | None:
    """What a reply shows of its original: author and first line, or that it was deleted."""
    if original is None:
        return None
    deleted = original.deleted_at is not None
    return {
        "id": original.number,
        "user": original.author.get_username(),
        "body": "" if deleted else snippet(original.body),
        "deleted": deleted,
    }


def reactions_payload(reactions: Iterable[Reaction]) -> list[dict[str, Any]]:
    """Each emoji once, in the order it was first used: its count and who reacted."""
    by_emoji: dict[str, list[str]] = {}
    for reaction in reactions:
        by_emoji.setdefault(reaction.emoji, []).append(reaction.user.get_username())
    return [
        {"emoji": emoji, "count": len(users), "users": users[:REACTORS_SHOWN]}
        for emoji, users in by_emoji.items()
    ]


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    """An attachment object (docs/protocol.md, Files and images): what it is, and the
    URLs that serve it to those who may read it."""
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "image": attachment.image,
        "width": attachment.width,
        "height": attachment.height,
        "url": reverse("chat:file", args=[attachment.pk, attachment.name]),
        "thumbnail_url": reverse("chat:file-thumbnail", args=[attachment.pk])
        if attachment.thumbnail
        else None,
    }


def attachments_snippet(attachments: Iterable[Attachment]) -> str:
    """What a message without a body says in a notification: its files' names."""
    return snippet("📎 " + ", ".join(attachment.name for attachment in attachments))


def message_payload(message: Message, *, for_author: bool) -> dict[str, Any]:
    """A message object of the protocol; the client_id only for its author.

    Its reply, reactions, mentions and attachments are read from what
    Message.objects.for_wire() fetches (or models.wire_relations_set gives a
    message just written).
    """
    return {
        "id": message.number,
        "room": message.room.slug,
        "user": message.author.get_username(),
        "body": message.body,
        "created": message.created.isoformat().replace("+00:00", "Z"),
        "client_id": message.client_id if for_author else None,
        "edited": message.edited,
        "reply_to": reply_payload(message.reply_to),
        "reactions": reactions_payload(message.reactions.all()),
        "mentions": [mention.user.get_username() for mention in message.mentions.all()],
        "attachments": [attachment_payload(item) for item in message.attachments.all()],
    }


def search_result_payload(
    message: Message, *, snippet: list[dict[str, Any]], url: str, for_author: bool
) -> dict[str, Any]:
    """A result of /api/search/: the message object, the snippet that matched (text
    segments, `match` marking the matches) and the message's permalink."""
    return {**message_payload(message, for_author=for_author), "snippet": snippet, "url": url}


def history_payload(page: HistoryPage, *, user_id: int) -> dict[str, Any]:
    """A page of history for `user_id`, as the `history` frame and the API tell it."""
    return {
        "messages": [
            message_payload(message, for_author=message.author_id == user_id)
            for message in page.messages
        ],
        "has_more": page.has_more,
        **page.sides(),
    }


def room_entry_payload(entry: RoomEntry, *, online: int) -> dict[str, Any]:
    """A room as one reader sees it: /api/rooms/, the lobby and /ws/me/."""
    room = entry.room
    return {
        "slug": room.slug,
        "name": entry.title,
        "description": room.description,
        "kind": room.kind,
        "archived": room.archived,
        "online": online,
        "unread": entry.unread,
        "mentions": entry.mentions,
        "notify": entry.notify,
        "role": entry.role,
    }
