"""@username in a message body: who it names, and whether they may be told.

A mention names a member: a user who may read the room (any active user for a
public room; a member for a private or direct one), other than the author.
Anything else stays plain text and notifies nobody.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model

from chat.models import Room

# Django's usernames: letters, digits and @ . + - _; a mention is one after an
# @ that does not continue a word or an address (ann@example.com names nobody).
_MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")
# At most this many names are looked up per message.
MENTIONS_MAX = 20


def mentioned_names(body: str) -> list[str]:
    """The usernames `body` may name, in order, each once (a trailing dot may be punctuation)."""
    names: list[str] = []
    for match in _MENTION.finditer(body):
        name = match[1]
        for candidate in (name, name.rstrip(".")):
            if candidate and candidate not in names:
                names.append(candidate)
    return names[: MENTIONS_MAX * 2]


def mentioned_members(*, room: Room, author_id: int, body: str) -> list[Any]:
    """The members `body` names, in the order it names them, the author left out."""
    names = mentioned_names(body)
    if not names:
        return []
    users = (
        get_user_model().objects.filter(username__in=names, is_active=True).exclude(pk=author_id)
    )
    if room.kind != Room.Kind.PUBLIC:
        users = users.filter(chat_rooms=room)
    found = {user.get_username(): user for user in users}
    return [found[name] for name in names if name in found][:MENTIONS_MAX]
