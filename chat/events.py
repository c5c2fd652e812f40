"""Channel-layer events and wire frames, built from JSON primitives in one place.

A group event's `type` picks the handler on every member's consumer, so group
events are only ever built here from validated fields, never from client JSON.
Broadcast events carry the frames as ready-made JSON text: a consumer sends
them as they are, touching no database and serialising nothing per recipient.
"""

from __future__ import annotations

import json
from typing import Any

from chat.models import Message, Room


def dumps(frame: dict[str, Any]) -> str:
    """Strict JSON text: no NaN or Infinity, which browsers refuse."""
    return json.dumps(frame, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def message_payload(message: Message, *, for_author: bool) -> dict[str, Any]:
    """A message object of the protocol; the client_id only for its author."""
    return {
        "id": message.number,
        "room": message.room.slug,
        "user": message.author.get_username(),
        "body": message.body,
        "created": message.created.isoformat().replace("+00:00", "Z"),
        "client_id": message.client_id if for_author else None,
        "edited": message.edited,
    }


def message_frame(message: Message, *, for_author: bool) -> str:
    """The `message` frame, as JSON text."""
    return dumps({"type": "message", **message_payload(message, for_author=for_author)})


def history_frame(messages: list[Message], *, user_id: int, has_more: bool) -> str:
    """The `history` frame for `user_id`."""
    return dumps(
        {
            "type": "history",
            "messages": [
                message_payload(message, for_author=message.author_id == user_id)
                for message in messages
            ],
            "has_more": has_more,
        }
    )


def welcome_frame(*, room: Room, username: str, online: list[str], last_id: int | None) -> str:
    """The `welcome` frame, always a socket's first."""
    return dumps(
        {
            "type": "welcome",
            "room": room_frame(room),
            "user": {"username": username},
            "online": online,
            "last_id": last_id,
        }
    )


def gap_frame(*, after: int, before: int) -> str:
    """The `gap` frame: the ids strictly between were not replayed."""
    return dumps({"type": "gap", "after": after, "before": before})


def error_frame(
    code: str, detail: str, *, client_id: str | None = None, retry_after: float | None = None
) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return dumps(frame)


def chat_message(message: Message) -> dict[str, Any]:
    """Group event: a newly stored message, numbered, with both renderings."""
    return {
        "type": "chat.message",
        "id": message.number,
        "author_id": message.author_id,
        "text": message_frame(message, for_author=False),
        "author_text": message_frame(message, for_author=True),
    }


def chat_message_edited(message: Message) -> dict[str, Any]:
    """Group event: a message's new body."""
    return {
        "type": "chat.message_edited",
        "text": dumps({"type": "message.edited", "id": message.number, "body": message.body}),
    }


def chat_message_deleted(message: Message) -> dict[str, Any]:
    """Group event: a message was deleted."""
    return {
        "type": "chat.message_deleted",
        "text": dumps({"type": "message.deleted", "id": message.number}),
    }


def chat_typing(*, user_id: int, username: str) -> dict[str, Any]:
    """Group event: someone is typing; not echoed to that user."""
    return {
        "type": "chat.typing",
        "user_id": user_id,
        "text": dumps({"type": "typing", "user": username}),
    }


def presence_text(*, joined: list[str], left: list[str]) -> str:
    """The `presence` frame, as JSON text."""
    frame: dict[str, Any] = {"type": "presence"}
    if joined:
        frame["joined"] = joined
    if left:
        frame["left"] = left
    return dumps(frame)


def chat_presence(
    *,
    version: int,
    joined: list[str] | None = None,
    left: list[str] | None = None,
    channel: str = "",
) -> dict[str, Any]:
    """Group event: users came online or went offline, as decided at the room's presence
    `version`; not echoed to `channel`."""
    return {
        "type": "chat.presence",
        "channel": channel,
        "version": version,
        "joined": joined or [],
        "left": left or [],
        "text": presence_text(joined=joined or [], left=left or []),
    }


def room_frame(room: Room) -> dict[str, Any]:
    """The room object of `welcome` and `room` frames."""
    return {"slug": room.slug, "name": room.name, "kind": room.kind, "archived": room.archived}


def chat_room_changed(room: Room, *, member_ids: list[int] | None) -> dict[str, Any]:
    """Group event: the room was renamed, archived, unarchived or changed kind.

    `member_ids` lists who may stay, for a private or direct room; None for a public one.
    """
    return {
        "type": "chat.room_changed",
        "kind": room.kind,
        "archived": room.archived,
        "member_ids": member_ids,
        "text": dumps({"type": "room", "room": room_frame(room)}),
    }


def chat_access_lost(*, user_ids: list[int]) -> dict[str, Any]:
    """Group event: these users are no longer members of the (private or direct) room."""
    return {"type": "chat.access_lost", "user_ids": user_ids}


def chat_user_closed(*, code: int, session_key: str | None = None) -> dict[str, Any]:
    """User-group event: close the user's sockets (of one session only, when given)."""
    return {"type": "chat.user_closed", "code": int(code), "session_key": session_key}
