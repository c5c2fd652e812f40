"""Channel-layer group names: from primary keys, never from user text (ASCII, short)."""

from __future__ import annotations


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


def notes_group_name(room_id: int) -> str:
    """The channel-layer group of a room's shared notes (chat/notes/)."""
    return f"notes-{room_id}"
