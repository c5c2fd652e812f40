"""Mutes as readers and writers meet them: the mute in force, and the words of a refusal.

The author-state query (chat.domain.author_state) reads the same mutes in SQL,
built from the querysets here.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, OuterRef, QuerySet

from chat.models import Mute


def _wire_time(moment: Any) -> str:
    return str(moment.isoformat(timespec="minutes").replace("+00:00", "Z"))


def mute_state(*, user_id: int | None, room_id: int) -> dict[str, Any] | None:
    """The user's mute in force for the room, as the wire shows it: {"scope": "room" or
    "all", "until": ISO time or None (no end)}, or None when they may write.

    Of several mutes in force, the one that ends last: it says when the user may
    write here again (a mute with no end before any other).
    """
    if user_id is None:
        return None
    mute = (
        Mute.objects.active(room_id=room_id)
        .filter(user_id=user_id)
        .order_by(F("until").desc(nulls_first=True), F("room_id").asc(nulls_first=True))
        .values("room_id", "until")
        .first()
    )
    if mute is None:
        return None
    return {
        "scope": "all" if mute["room_id"] is None else "room",
        "until": None if mute["until"] is None else _wire_time(mute["until"]),
    }


def mute_words(mute: dict[str, Any] | None) -> str:
    """The `detail` of a `muted` refusal: "you are muted in every room until 2026-…Z"."""
    where = "every room" if mute is not None and mute["scope"] == "all" else "this room"
    detail = f"you are muted in {where}"
    if mute is not None and mute["until"] is not None:
        detail += f" until {mute['until']}"
    return detail


def mutes_query(room_id: int) -> QuerySet[Mute]:
    """Mutes in force in the room of the user OuterRef("pk"): for a query of users."""
    return Mute.objects.active(room_id=room_id).filter(user_id=OuterRef("pk"))


def mute_end_query(*, room_id: int) -> QuerySet[Mute, Any]:
    """The latest end of the mutes in force of the user OuterRef("pk"); NULL while one
    has no end."""
    return mutes_query(room_id).order_by(F("until").desc(nulls_first=True)).values("until")[:1]
