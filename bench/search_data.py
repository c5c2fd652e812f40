"""A chat site's worth of messages for the search bench, loaded with COPY.

    load(connection, messages=1_000_000, seed=2026) -> Corpus

Real English word frequencies (wordfreq's, which follow Zipf's law), short
messages of lognormal length, several hundred rooms (public, private and
direct) whose traffic is itself skewed, thousands of users, a year of time,
and 1% of messages deleted. Everything is drawn from one seeded generator:
the same seed loads the same corpus.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import wordfreq

VOCABULARY = 20_000
USERS = 5_000
PUBLIC_ROOMS = 150
PRIVATE_ROOMS = 150
DIRECT_ROOMS = 300
# Share of all messages written in each kind of room.
SHARE = {"public": 0.55, "private": 0.30, "direct": 0.15}
DELETED = 0.01
START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=330)
# The users the queries run as: each a member of some private rooms and some
# direct conversations, besides every public room.
SEARCHERS = 5
SEARCHER_PRIVATE_ROOMS = 8
SEARCHER_DIRECT_ROOMS = 12


@dataclass
class Corpus:
    """What was loaded, as the queries need it."""

    messages: int
    words: list[str]
    weights: list[float]
    rooms: dict[str, list[int]] = field(default_factory=dict)  # kind -> room ids
    slugs: dict[int, str] = field(default_factory=dict)
    searchers: list[str] = field(default_factory=list)
    readable: dict[str, list[int]] = field(default_factory=dict)  # searcher -> room ids
    authors: dict[int, list[int]] = field(default_factory=dict)  # room id -> author ids
    usernames: dict[int, str] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)  # some bodies, for phrases
    load_seconds: dict[str, float] = field(default_factory=dict)


def vocabulary() -> tuple[list[str], list[float]]:
    """The VOCABULARY most frequent English words and their frequencies."""
    # COPY's text format would need escapes for these; no real word has them.
    words = [w for w in wordfreq.top_n_list("en", VOCABULARY + 100) if not set(w) & set("\t\n\\")]
    words = words[:VOCABULARY]
    return words, [wordfreq.word_frequency(word, "en") for word in words]


def message_length(rng: random.Random) -> int:
    """Words in a chat message: mostly short, sometimes long (median 8)."""
    return max(1, min(120, round(rng.lognormvariate(math.log(8), 0.7))))


def load(connection: psycopg.Connection[Any], *, messages: int, seed: int = 2026) -> Corpus:
    """Users, rooms, memberships and `messages` messages into the site's (migrated) tables."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible corpus, not a secret)
    words, weights = vocabulary()
    corpus = Corpus(messages=messages, words=words, weights=weights)
    user_ids = _users(connection)
    corpus.usernames = dict(
        connection.execute("SELECT id, username FROM auth_user").fetchall()  # type: ignore[arg-type]
    )
    members = _rooms(connection, corpus, rng, user_ids)
    _searchers(connection, corpus, rng, members)
    _messages(connection, corpus, rng, user_ids, members)
    connection.commit()
    return corpus


def _users(connection: psycopg.Connection[Any]) -> list[int]:
    # An unusable password: nobody logs in to the bench's database.
    rows = connection.execute(
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined)"
        " SELECT '!', false, 'user' || lpad(n::text, 4, '0'), '', '', '', false, true, now()"
        " FROM generate_series(1, %s) AS n RETURNING id",
        (USERS,),
    ).fetchall()
    return [row[0] for row in rows]


def _rooms(
    connection: psycopg.Connection[Any],
    corpus: Corpus,
    rng: random.Random,
    user_ids: list[int],
) -> dict[int, list[int]]:
    """The rooms and their members (room id -> member ids; public rooms: none)."""
    members: dict[int, list[int]] = {}
    plan = [
        *(("public", f"public-{n}", []) for n in range(PUBLIC_ROOMS)),
        *(
            ("private", f"private-{n}", rng.sample(user_ids, rng.randint(5, 60)))
            for n in range(PRIVATE_ROOMS)
        ),
    ]
    for n in range(DIRECT_ROOMS):
        low, high = sorted(rng.sample(user_ids, 2))
        plan.append(("direct", f"dm-{low}-{high}-{n}", [low, high]))
    for kind, slug, room_members in plan:
        (room_id,) = connection.execute(
            "INSERT INTO chat_room (name, slug, description, kind, archived, public_viewing,"
            " live_comments, state_version, created, last_message_number)"
            " VALUES (%s, %s, '', %s, false, false, false, 0, %s, 0) RETURNING id",
            (slug, slug, kind, START),
        ).fetchone()  # type: ignore[misc]
        corpus.rooms.setdefault(kind, []).append(room_id)
        corpus.slugs[room_id] = slug
        members[room_id] = list(room_members)
    _members_add(connection, members)
    return members


def _members_add(connection: psycopg.Connection[Any], members: dict[int, list[int]]) -> None:
    with connection.cursor() as cursor:
        copied = "COPY chat_membership (room_id, user_id, role, created) FROM STDIN"
        with cursor.copy(copied) as copy:
            for room_id, user_ids in members.items():
                for user_id in user_ids:
                    copy.write_row((room_id, user_id, "member", START))


def _searchers(
    connection: psycopg.Connection[Any],
    corpus: Corpus,
    rng: random.Random,
    members: dict[int, list[int]],
) -> None:
    """SEARCHERS users made members of some private and direct rooms."""
    added: dict[int, list[int]] = {}
    for n in range(SEARCHERS):
        user_id = 1 + n  # user0001 ...
        rooms = rng.sample(corpus.rooms["private"], SEARCHER_PRIVATE_ROOMS) + rng.sample(
            corpus.rooms["direct"], SEARCHER_DIRECT_ROOMS
        )
        for room_id in rooms:
            if user_id not in members[room_id]:
                members[room_id].append(user_id)
                added.setdefault(room_id, []).append(user_id)
        username = corpus.usernames[user_id]
        corpus.searchers.append(username)
        corpus.readable[username] = corpus.rooms["public"] + rooms
    _members_add(connection, added)


def _messages(
    connection: psycopg.Connection[Any],
    corpus: Corpus,
    rng: random.Random,
    user_ids: list[int],
    members: dict[int, list[int]],
) -> None:
    """`corpus.messages` messages, in time order, numbered per room."""
    rooms: list[int] = []
    room_weights: list[float] = []
    for kind, share in SHARE.items():
        ids = corpus.rooms[kind]
        # Within a kind, traffic is skewed too: the n-th busiest room has 1/n^0.8 of it.
        skew = [1 / (rank + 1) ** 0.8 for rank in range(len(ids))]
        total = sum(skew)
        rooms += ids
        room_weights += [share * value / total for value in skew]
    # Public rooms' authors: a tenth of the users, some far more talkative than others.
    talkers = rng.sample(user_ids, len(user_ids) // 10)
    talker_weights = [1 / (rank + 1) for rank in range(len(talkers))]
    numbers: dict[int, int] = dict.fromkeys(rooms, 0)
    cumulative_words = _cumulative(corpus.weights)
    cumulative_rooms = _cumulative(room_weights)
    step = SPAN / corpus.messages
    sample_every = max(1, corpus.messages // 2000)
    copy_sql = (
        "COPY chat_message (room_id, number, author_id, body, created, edited,"
        " deleted_at, reactions_version) FROM STDIN"
    )
    with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        chunk = io.StringIO()
        room_choices = rng.choices(rooms, cum_weights=cumulative_rooms, k=corpus.messages)
        for index, room_id in enumerate(room_choices):
            numbers[room_id] += 1
            if members[room_id]:
                author = rng.choice(members[room_id])
            else:
                author = rng.choices(talkers, weights=talker_weights)[0]
            corpus.authors.setdefault(room_id, [])
            if len(corpus.authors[room_id]) < 50 and author not in corpus.authors[room_id]:
                corpus.authors[room_id].append(author)
            body = " ".join(
                rng.choices(corpus.words, cum_weights=cumulative_words, k=message_length(rng))
            )
            if index % sample_every == 0:
                corpus.samples.append(body)
            created = START + step * index
            deleted = r"\N"  # COPY's NULL
            if rng.random() < DELETED:
                deleted = (created + timedelta(minutes=5)).isoformat()
            chunk.write(
                f"{room_id}\t{numbers[room_id]}\t{author}\t{body}\t{created.isoformat()}"
                f"\tf\t{deleted}\t0\n"
            )
            if index % 20_000 == 19_999:
                copy.write(chunk.getvalue())
                chunk = io.StringIO()
        copy.write(chunk.getvalue())
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE chat_room SET last_message_number = %s WHERE id = %s",
            [(number, room_id) for room_id, number in numbers.items()],
        )


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out
