"""The search bench's queries: ten kinds, drawn from the corpus (bench/search_data.py), as
GET /api/search/ parameters. The same seed gives the same queries in every run.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import timedelta
from typing import Any

import search_data

# Queries of each kind in a run.
QUERIES_PER_KIND = 100
# The kinds of query, in the order of the report.
KINDS = (
    "rare word",
    "common word",
    "any word",
    "phrase",
    "-word",
    "or",
    "room filter",
    "author filter",
    "date range",
    "later page",
)


def stop_words(words: list[str]) -> set[str]:
    """The words PostgreSQL's english configuration does not index."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w FROM unnest(%s::text[]) AS w WHERE to_tsvector('english', w) = ''::tsvector",
            [words],
        )
        return {row[0] for row in cursor.fetchall()}


def queries(corpus: search_data.Corpus, rng: random.Random) -> list[dict[str, Any]]:
    """QUERIES_PER_KIND queries of each kind: {kind, user, params}."""
    skip = stop_words(corpus.words)
    ranked = [
        (rank, word)
        for rank, word in enumerate(corpus.words)
        if word not in skip and word.isalpha() and len(word) > 2
    ]
    common = [word for rank, word in ranked if rank < 400][:200]
    rare = [word for rank, word in ranked if rank >= 6000]

    def any_word() -> str:
        # Log-uniform over the ranks: as many words from each order of magnitude
        # of frequency, the middle (a few thousand matches) included.
        while True:
            rank = int(math.exp(rng.uniform(math.log(30), math.log(len(corpus.words)))))
            word = corpus.words[min(rank, len(corpus.words) - 1)]
            if word not in skip and word.isalpha() and len(word) > 2:
                return word

    def phrase() -> str:
        while True:
            words = rng.choice(corpus.samples).split()
            pairs = [
                (a, b)
                for a, b in itertools.pairwise(words)
                if a not in skip and b not in skip and a.isalpha() and b.isalpha()
            ]
            if pairs:
                return '"{} {}"'.format(*rng.choice(pairs))

    def window() -> dict[str, str]:
        start = search_data.START + timedelta(days=rng.uniform(0, 300))
        return {
            "after": start.date().isoformat(),
            "before": (start + timedelta(days=30)).date().isoformat(),
        }

    made: list[dict[str, Any]] = []
    for kind in KINDS:
        for _ in range(QUERIES_PER_KIND):
            user = rng.choice(corpus.searchers)
            params: dict[str, str]
            if kind == "rare word":
                params = {"q": rng.choice(rare)}
            elif kind == "common word":
                params = {"q": rng.choice(common)}
            elif kind == "any word":
                params = {"q": any_word()}
            elif kind == "phrase":
                params = {"q": phrase()}
            elif kind == "-word":
                params = {"q": f"{rng.choice(common)} -{rng.choice(common)}"}
            elif kind == "or":
                params = {"q": f"{any_word()} or {any_word()}"}
            elif kind == "room filter":
                room = rng.choice(corpus.readable[user])
                params = {"q": any_word(), "room": corpus.slugs[room]}
            elif kind == "author filter":
                room = rng.choice(corpus.readable[user])
                author = rng.choice(corpus.authors.get(room) or [1])
                params = {"q": rng.choice(common), "user": corpus.usernames[author]}
            elif kind == "date range":
                params = {"q": any_word(), **window()}
            else:
                params = {"q": rng.choice(common), "page": str(rng.randint(2, 10))}
            made.append({"kind": kind, "user": user, "params": params})
    return made


# --- one query, each way ------------------------------------------------------------------
