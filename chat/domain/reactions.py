"""Reactions: one emoji per person per message, each emoji a single grapheme.

Any single emoji is accepted: one grapheme cluster made only of emoji code
points (pictographs, skin tones, joiners, flags, keycaps, tags) that shows as
an emoji (an emoji-presentation character, a variation selector 16, a flag or
a keycap). A letter, a digit, two emoji or text around one are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex
from django.contrib.auth.models import User
from django.db import transaction

from chat.domain.access import write_check
from chat.domain.author_state import author_may_write
from chat.errors import ChatError
from chat.models import Message, Reaction
from chat.protocol import MAX_ID, whole_number

_EMOJI_ONLY = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Component}]+")
_SHOWN_AS_EMOJI = regex.compile(r"\p{Emoji_Presentation}|\uFE0F|\p{Regional_Indicator}{2}|\u20E3")
EMOJI_MAX = 32  # code points: the longest family and flag sequences fit


def emoji_clean(emoji: object) -> str:
    """`emoji` if it is a single emoji, or ChatError(bad_request)."""
    if (
        not isinstance(emoji, str)
        or not 1 <= len(emoji) <= EMOJI_MAX
        or not regex.fullmatch(r"\X", emoji)
        or not _EMOJI_ONLY.fullmatch(emoji)
        or not _SHOWN_AS_EMOJI.search(emoji)
    ):
        raise ChatError("bad_request", "emoji must be a single emoji")
    return emoji


@dataclass(frozen=True)
class Reactions:
    """A message's reactions after a change, at `version` of its reactions."""

    message: Message
    reactions: list[Reaction]
    version: int
    changed: bool


def reaction_set(
    *, room_id: int, number: object, user: User, emoji: object, present: bool
) -> Reactions:
    """Add (`present`) or take back one's emoji on a message; adding twice is a no-op.

    The message row is locked while its reactions change, so that versions
    count the changes in the order they committed.
    """
    emoji = emoji_clean(emoji)
    number = whole_number(number, "id")
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("room")
            .filter(room_id=room_id, number=min(number, MAX_ID), deleted_at__isnull=True)
            .first()
        )
        if message is None:
            raise ChatError("not_found", "no such message")
        write_check(room=message.room, user=user, verb="react")
        author_may_write(author_id=user.pk, room_id=room_id)
        mine = Reaction.objects.filter(message=message, user=user, emoji=emoji)
        if present:
            changed = not mine.exists()
            if changed:
                Reaction.objects.create(message=message, user=user, emoji=emoji)
        else:
            changed = mine.delete()[0] > 0
        if changed:
            message.reactions_version += 1
            message.save(update_fields=["reactions_version"])
        reactions = list(Reaction.objects.filter(message=message).select_related("user"))
    return Reactions(
        message=message, reactions=reactions, version=message.reactions_version, changed=changed
    )


def reaction_moderate(reaction: Reaction) -> Reactions:
    """A moderator takes one reaction away (the admin): whatever its author's state."""
    with transaction.atomic():
        message = Message.objects.select_for_update(of=("self",)).get(pk=reaction.message_id)
        deleted = Reaction.objects.filter(pk=reaction.pk).delete()[0] > 0
        if deleted:
            message.reactions_version += 1
            message.save(update_fields=["reactions_version"])
        reactions = list(Reaction.objects.filter(message=message).select_related("user"))
    return Reactions(
        message=message, reactions=reactions, version=message.reactions_version, changed=deleted
    )
