"""Channel-layer events and wire frames, built from JSON primitives in one place.

A group event's `type` picks the handler on every member's consumer, so group
events are only ever built here from validated fields, never from client JSON.
Broadcast events carry the frames as ready-made JSON text: a consumer sends
them as they are, touching no database and serialising nothing per recipient.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chat.domain.payloads import (
    attachments_snippet,
    history_payload,
    message_payload,
    reactions_payload,
    snippet,
)
from chat.models import HistoryPage, Message, Reaction, Room


def dumps(frame: Any) -> str:
    """Strict JSON text: no NaN or Infinity, which browsers refuse."""
    return json.dumps(frame, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def message_frame(message: Message, *, for_author: bool) -> str:
    """The `message` frame, as JSON text."""
    return dumps({"type": "message", **message_payload(message, for_author=for_author)})


def message_frames(message: Message) -> tuple[str, str]:
    """The `message` frame as everyone gets it, and as its author does (with the
    client_id): one message object for both."""
    frame = {"type": "message", **message_payload(message, for_author=False)}
    text = dumps(frame)
    if message.client_id is None:
        return text, text
    frame["client_id"] = message.client_id
    return text, dumps(frame)


def history_frame(page: HistoryPage, *, user_id: int) -> str:
    """The `history` frame for `user_id`."""
    return dumps({"type": "history", **history_payload(page, user_id=user_id)})


def welcome_frame(
    *,
    room: Room,
    username: str | None,
    online: list[str],
    last_id: int | None,
    viewers: int | None = None,
    mute: dict[str, Any] | None = None,
) -> str:
    """The `welcome` frame, always a socket's first.

    A broadcast room's adds `viewers` (instead of whom `online` would list) and
    its `state` and `state_version`; a viewer not signed in has `user: null`.
    A signed-in reader's has `mute`: their mute in force here, or null.
    """
    frame: dict[str, Any] = {
        "type": "welcome",
        "room": room_frame(room),
        "user": None if username is None else {"username": username},
        "online": online,
        "last_id": last_id,
    }
    if username is not None:
        frame["mute"] = mute
    if room.kind == Room.Kind.BROADCAST:
        frame.update(viewers=viewers or 0, state=room.state, state_version=room.state_version)
    return dumps(frame)


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
    """Group event: a newly stored message, numbered, with both renderings.

    Also what the readers' own sockets (/ws/me/) count and notify: the room,
    who is mentioned, and who wrote what.
    """
    text, author_text = message_frames(message)
    return {
        "type": "chat.message",
        "id": message.number,
        "room_id": message.room_id,
        "author_id": message.author_id,
        "mention_ids": [mention.user_id for mention in message.mentions.all()],
        "username": message.author.get_username(),
        "snippet": snippet(message.body) or attachments_snippet(message.attachments.all()),
        "text": text,
        "author_text": author_text,
    }


def plain_message_event(
    *,
    number: int,
    room_id: int,
    room_slug: str,
    author_id: int,
    username: str,
    body: str,
    created: datetime,
    client_id: str | None,
) -> dict[str, Any]:
    """chat_message, for a message just stored with no reply, mention or file, from
    the row's values alone: no model instance is built (chat.actions.plain)."""
    frame: dict[str, Any] = {
        "type": "message",
        "id": number,
        "room": room_slug,
        "user": username,
        "body": body,
        "created": created.isoformat().replace("+00:00", "Z"),
        "client_id": None,
        "edited": False,
        "reply_to": None,
        "reactions": [],
        "mentions": [],
        "attachments": [],
    }
    text = dumps(frame)
    author_text = text
    if client_id is not None:
        frame["client_id"] = client_id
        author_text = dumps(frame)
    return {
        "type": "chat.message",
        "id": number,
        "room_id": room_id,
        "author_id": author_id,
        "mention_ids": [],
        "username": username,
        "snippet": snippet(body),
        "text": text,
        "author_text": author_text,
    }


def chat_message_edited(
    message: Message, *, mentions: list[str], mentions_changed: list[int]
) -> dict[str, Any]:
    """Group event: a message's new body and mentions; whose mention counts changed."""
    frame = {
        "type": "message.edited",
        "id": message.number,
        "body": message.body,
        "mentions": mentions,
    }
    return {
        "type": "chat.message_edited",
        "room_id": message.room_id,
        "mentions_changed": mentions_changed,
        "text": dumps(frame),
    }


def chat_message_deleted(message: Message, *, mention_ids: list[int]) -> dict[str, Any]:
    """Group event: a message was deleted (its author and mentions, for the counts)."""
    return {
        "type": "chat.message_deleted",
        "room_id": message.room_id,
        "id": message.number,
        "author_id": message.author_id,
        "mention_ids": mention_ids,
        "text": dumps({"type": "message.deleted", "id": message.number}),
    }


def reactions_frame(message: Message, reactions: list[Reaction], *, version: int) -> str:
    """The `message.reactions` frame: a message's reactions as of `version`."""
    return dumps(
        {
            "type": "message.reactions",
            "id": message.number,
            "reactions": reactions_payload(reactions),
            "version": version,
        }
    )


def chat_reactions(message: Message, reactions: list[Reaction], *, version: int) -> dict[str, Any]:
    """Group event: a message's reactions changed."""
    return {"type": "chat.reactions", "text": reactions_frame(message, reactions, version=version)}


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
    room_id: int,
    version: int,
    joined: list[str] | None = None,
    left: list[str] | None = None,
    channel: str = "",
) -> dict[str, Any]:
    """Group event: users came online or went offline in a room, as decided at the
    room's presence `version`; not echoed to `channel`."""
    return {
        "type": "chat.presence",
        "room_id": room_id,
        "channel": channel,
        "version": version,
        "joined": joined or [],
        "left": left or [],
        "text": presence_text(joined=joined or [], left=left or []),
    }


def state_frame(*, state: Any, version: int) -> str:
    """The `room.state` frame: a broadcast room's state as of `version`."""
    return dumps({"type": "room.state", "state": state, "version": version})


def chat_state(*, room_id: int, state: Any, version: int) -> dict[str, Any]:
    """Group event: a broadcast room's state changed."""
    return {
        "type": "chat.state",
        "room_id": room_id,
        "version": version,
        "text": state_frame(state=state, version=version),
    }


def viewers_frame(count: int) -> str:
    """The `viewers` frame: how many sockets watch a broadcast room."""
    return dumps({"type": "viewers", "count": count})


def chat_comment(*, room_id: int, username: str, body: str, time: float | None) -> dict[str, Any]:
    """Group event: a live comment (never stored, no id)."""
    frame: dict[str, Any] = {"type": "comment", "user": username, "body": body}
    if time is not None:
        frame["time"] = time
    return {"type": "chat.comment", "room_id": room_id, "text": dumps(frame)}


def chat_attention(*, room_id: int) -> dict[str, Any]:
    """User (or `rooms`) group event: what a reader has of this room changed; read it again."""
    return {"type": "chat.attention", "room_id": room_id}


def room_frame(room: Room) -> dict[str, Any]:
    """The room object of `welcome` and `room` frames (`live_comments`: an extension)."""
    return {
        "slug": room.slug,
        "name": room.name,
        "kind": room.kind,
        "archived": room.archived,
        "live_comments": room.live_comments,
    }


def chat_room_changed(room: Room, *, member_ids: list[int] | None) -> dict[str, Any]:
    """Group event: the room was renamed, archived, unarchived, or changed who may read it
    (its kind, its members, whether people not signed in may watch).

    `member_ids` lists who may stay, for a private or direct room; None for the others.
    """
    return {
        "type": "chat.room_changed",
        "room_id": room.pk,
        "kind": room.kind,
        "live_comments": room.live_comments,
        "public_viewing": room.public_viewing,
        "archived": room.archived,
        "member_ids": member_ids,
        "text": dumps({"type": "room", "room": room_frame(room)}),
    }


def chat_access_lost(*, room_id: int, user_ids: list[int]) -> dict[str, Any]:
    """Group event: these users are no longer members of the (private or direct) room."""
    return {"type": "chat.access_lost", "room_id": room_id, "user_ids": user_ids}


def chat_user_closed(*, code: int, session_key: str | None = None) -> dict[str, Any]:
    """User-group event: close the user's sockets (of one session only, when given)."""
    return {"type": "chat.user_closed", "code": int(code), "session_key": session_key}


def chat_mute_changed() -> dict[str, Any]:
    """User-group event: a mute of the user began, changed or was lifted; each room
    socket of theirs reads what holds for its room now (a `mute` frame)."""
    return {"type": "chat.mute_changed"}


def mute_frame(mute: dict[str, Any] | None) -> str:
    """The `mute` frame: the reader's mute in force in this room now, or null."""
    return dumps({"type": "mute", "mute": mute})


# --- shared notes (chat/notes/) ---------------------------------------------------------
# The notes' events carry Yjs bytes: the Redis layer packs them as msgpack binary.


def notes_update(*, room_id: int, number: int, update: bytes, origin: str) -> dict[str, Any]:
    """Group event (`notes-<pk>`): the room's notes update `number`, stored; `origin`
    is the channel of the socket that sent it (which has it already)."""
    return {
        "type": "notes.update",
        "room_id": room_id,
        "number": number,
        "update": bytes(update),
        "origin": origin,
    }


def notes_awareness(*, room_id: int, entries: list[dict[str, Any]], origin: str) -> dict[str, Any]:
    """Group event (`notes-<pk>`): awareness states (client id, clock, JSON state) of
    the notes' editors, as a socket sent them or as its close removed them."""
    return {"type": "notes.awareness", "room_id": room_id, "entries": entries, "origin": origin}
