"""Reactions: a person's emoji on a message, and a moderator's taking one away."""

from __future__ import annotations

from django.contrib.auth.models import User

from chat.actions.outbox import send_on_commit
from chat.domain import events, reactions
from chat.models import Reaction
from chat.platform.groups import room_group_name


def reaction_set(
    *, room_id: int, number: object, user: User, emoji: object, present: bool
) -> reactions.Reactions:
    """Add or take back one's emoji (chat.domain.reactions decides); a change is broadcast on
    commit, as a newer version of the message's reactions."""
    result = reactions.reaction_set(
        room_id=room_id, number=number, user=user, emoji=emoji, present=present
    )
    if result.changed:
        _reactions_send(result)
    return result


def reaction_moderate(reaction: Reaction) -> reactions.Reactions:
    """A moderator takes one reaction away (the admin), whatever its author's state."""
    result = reactions.reaction_moderate(reaction)
    if result.changed:
        _reactions_send(result)
    return result


def _reactions_send(result: reactions.Reactions) -> None:
    send_on_commit(
        room_group_name(result.message.room_id),
        events.chat_reactions(result.message, result.reactions, version=result.version),
    )
