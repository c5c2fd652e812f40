"""A result's snippet: the database marks the matches, and they are split out here as
text segments (the page gets text, never markup)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chat.domain.inputs import WHITE_SPACE

# Private-use characters: the databases mark matches in a snippet with the
# first two, split out here (the page gets text segments, never markup); the
# third stands in for "<" while PostgreSQL makes the snippet, whose parser
# would otherwise take "<b>" in a message for a tag and leave it out.
MARK_START = "\ue000"

MARK_END = "\ue001"

LESS_THAN = "\ue002"

MARKS = frozenset(MARK_START + MARK_END + LESS_THAN)

# Words around the matches in a snippet.
SNIPPET_WORDS = 24

ELLIPSIS = "…"


@dataclass(frozen=True)
class Segment:
    """A piece of a snippet: text as written, and whether it matched."""

    text: str
    match: bool


def snippet_segments(marked: str, body: str) -> list[Segment]:
    """A snippet the database marked with MARK_START/MARK_END, as segments; with an
    ellipsis where it leaves out the start or end of `body`.

    A body holding one of the marks itself cannot be told apart from the marks:
    its snippet is its start, unmarked.
    """
    if MARKS & set(body):
        return [Segment(_shortened(body), False)]
    marked = marked.replace(LESS_THAN, "<")
    plain = marked.replace(MARK_START, "").replace(MARK_END, "")
    segments: list[Segment] = []
    for index, piece in enumerate(re.split(f"[{MARK_START}{MARK_END}]", marked)):
        if piece:
            segments.append(Segment(piece, index % 2 == 1))
    if not segments:
        return [Segment(_shortened(body), False)]
    stripped = plain.strip(WHITE_SPACE)
    where = body.find(stripped) if stripped else -1
    if where > 0 and not segments[0].text.startswith(ELLIPSIS):
        segments.insert(0, Segment(ELLIPSIS, False))
    if where >= 0 and where + len(stripped) < len(body.rstrip(WHITE_SPACE)):
        if not segments[-1].text.endswith(ELLIPSIS):
            segments.append(Segment(ELLIPSIS, False))
    return segments


def _shortened(body: str) -> str:
    words = body.split()
    return " ".join(words[:SNIPPET_WORDS]) + (f" {ELLIPSIS}" if len(words) > SNIPPET_WORDS else "")
