"""The search bench: search on a million messages, against the naive search in the same run.

A fresh PostgreSQL database, searched through chat/search/ as GET /api/search/
searches.

    .venv/bin/python bench/search.py [--out bench/results/<date>-search] [--messages N]

Loads the corpus of bench/search_data.py with COPY, builds the index with
`manage.py chat_search_rebuild` (as an operator would after loading), then
times queries of several kinds, each as one of a few users who read some
private rooms and direct conversations besides the public rooms. Every query
runs twice in turn: through chat/search/, and through the naive search
(every word `icontains`, PostgreSQL's `UPPER(body) LIKE UPPER('%word%')`,
newest first) behind the same gate. Both build the page's message objects.
Writes results.json and README.md (bench/search_report.py) into --out; `make
bench` runs it as its `search` scenario (bench/run.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

# The bench's modules, and the site's (in this process: Django runs the searches).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
import search_data
import search_queries
import search_report
from search_queries import KINDS, QUERIES_PER_KIND

BENCH = Path(__file__).resolve().parent

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432")
MESSAGES = 1_000_000
WARM_UP_QUERIES = 60
P99_TARGET_MS = 100.0
SEED = 2026


def django_setup(database_url: str) -> None:
    """Django with the site's settings on the bench's database, in this process."""
    for name in list(os.environ):
        if name.startswith(("DJANGO_", "CHAT_")) or name == "DATABASE_URL":
            del os.environ[name]
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
            "DATABASE_URL": database_url,
        }
    )
    import django

    django.setup()


# --- the queries --------------------------------------------------------------------------


def searched(user: Any, params: dict[str, str]) -> int:
    """What GET /api/search/ does for these parameters, minus HTTP; the results' count."""
    from chat.search.parse import search_parse
    from chat.search.ranking import messages_search
    from chat.web.views.search import search_result

    page = messages_search(user=user, search=search_parse(params))
    results = [search_result(hit, user_id=user.pk) for hit in page.hits]
    json.dumps(results)
    return len(results)


def naive(user: Any, params: dict[str, str]) -> int:
    """The naive search behind the same gate: each term `icontains`, newest first.

    The same query syntax (so the same terms), the same filters, the same page
    of 20 and the same message objects; no ranking and no snippets.
    """
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from chat.domain import payloads
    from chat.domain.access import room_for_user
    from chat.models import Message, Room
    from chat.search.parse import search_parse
    from chat.search.ranking import SEARCH_PAGE_SIZE

    search = search_parse(params)
    messages = Message.objects.visible()
    if search.room is not None:
        messages = messages.filter(room=room_for_user(user=user, slug=search.room))
    else:
        messages = messages.filter(room__in=Room.objects.visible_to(user))
    for clause in search.clauses:
        either = Q()
        for term in clause.terms:
            either |= Q(body__icontains=term.text)
        messages = messages.exclude(either) if clause.excluded else messages.filter(either)
    if search.user is not None:
        messages = messages.filter(author__in=get_user_model().objects.filter(username=search.user))
    if search.before is not None:
        messages = messages.filter(created__lt=search.before)
    if search.after is not None:
        messages = messages.filter(created__gte=search.after)
    start = (search.page - 1) * SEARCH_PAGE_SIZE
    page = list(messages.order_by("-id").for_wire()[start : start + SEARCH_PAGE_SIZE + 1])
    results = [
        payloads.message_payload(message, for_author=message.author_id == user.pk)
        for message in page[:SEARCH_PAGE_SIZE]
    ]
    json.dumps(results)
    return len(results)


def timed(function: Any, user: Any, params: dict[str, str]) -> tuple[float, int | str]:
    """Milliseconds the call took, and its count of results (or the refusal's code)."""
    from chat.errors import ChatError

    started = time.perf_counter()
    try:
        outcome: int | str = function(user, params)
    except ChatError as error:
        outcome = error.code
    return (time.perf_counter() - started) * 1000, outcome


def explain(user: Any, params: dict[str, str]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the queries that found a search's page (the one
    among the newest messages, and the one of all of them when it was needed), run
    as chat/search/ runs them."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        searched(user, params)
    statements = [query["sql"] for query in captured if "AS candidates" in query["sql"]]
    if not statements:
        return "(no page query: refused before it)"
    explained = []
    for statement in statements:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
                " set_config('random_page_cost', '1.1', true)"
            )
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        explained.append(f"{statement}\n\n{plan}")
    return "\n\n".join(explained)


# --- the run ------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "count": len(samples),
        "p50_ms": percentile(samples, 0.50),
        "p95_ms": percentile(samples, 0.95),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": max(samples),
    }


def run(out: Path, messages: int, keep: bool) -> dict[str, Any]:
    from targets.machine import machine  # the fan-out bench's description of the machine

    say(f"search bench: {messages:,} messages")
    database = f"chatsite_bench_search_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    results: dict[str, Any] = {
        "started": datetime.now().isoformat(timespec="seconds"),
        "messages": messages,
        "machine": machine(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }
    try:
        django_setup(f"{POSTGRES_URL}/{database}")
        results.update(measure(messages))
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        else:
            say(f"kept the database {database}")
    results["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    results["finished"] = datetime.now().isoformat(timespec="seconds")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    search_report.write(results, out)
    say(f"done: {out / 'README.md'}")
    return results


def measure(messages: int) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from chat.search import ranking as search_ranking
    from chat.search import schema as search_schema

    results: dict[str, Any] = {"settings": {}}
    call_command("migrate", verbosity=0)
    # Loaded without the index, then indexed at once: faster than row by row.
    search_schema.index_drop(connection)
    started = time.monotonic()
    with psycopg.connect(_url(connection)) as raw:
        corpus = search_data.load(raw, messages=messages, seed=SEED)
    results["load_seconds"] = time.monotonic() - started
    say(f"  loaded in {results['load_seconds']:.0f} s")
    started = time.monotonic()
    call_command("chat_search_rebuild", verbosity=0)
    results["index_seconds"] = time.monotonic() - started
    with connection.cursor() as cursor:
        # What autovacuum does in time: every table's statistics, the visibility map.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT pg_table_size('chat_message'), pg_relation_size('chat_message_search'),"
            " current_setting('shared_buffers'), current_setting('work_mem'),"
            " current_setting('server_version'), count(*) FILTER (WHERE deleted_at IS NULL)"
            " FROM chat_message"
        )
        table, index, shared_buffers, work_mem, version, visible = cursor.fetchone()
    say(f"  indexed in {results['index_seconds']:.0f} s")
    results["database"] = {
        "table_bytes": table,
        "index_bytes": index,
        "shared_buffers": shared_buffers,
        "work_mem": work_mem,
        "postgresql": version,
        "visible_messages": visible,
    }
    rooms = {kind: len(ids) for kind, ids in corpus.rooms.items()}
    users = get_user_model().objects.in_bulk(field_name="username")
    readable = {name: len(corpus.readable[name]) for name in corpus.searchers}
    results["corpus"] = {
        "users": search_data.USERS,
        "rooms": rooms,
        "vocabulary": search_data.VOCABULARY,
        "searchers": corpus.searchers,
        "rooms_readable": readable,
        "deleted_share": search_data.DELETED,
        "examples": corpus.samples[:5],
    }
    results["settings"] = {
        "queries_per_kind": QUERIES_PER_KIND,
        "warm_up_queries": WARM_UP_QUERIES,
        "page_size": search_ranking.SEARCH_PAGE_SIZE,
        "candidates": search_ranking.SEARCH_CANDIDATES,
        "language": settings.CHAT_SEARCH_LANGUAGE,
        "p99_target_ms": P99_TARGET_MS,
        "seed": SEED,
    }
    rng = random.Random(SEED)  # noqa: S311  (reproducible queries, not a secret)
    planned = search_queries.queries(corpus, rng)
    rng.shuffle(planned)
    warm = search_queries.queries(corpus, random.Random(SEED + 1))  # noqa: S311
    rng.shuffle(warm)
    warm = warm[:WARM_UP_QUERIES]
    say(f"  warming up with {len(warm)} queries")
    for query in warm:
        user = users[query["user"]]
        timed(searched, user, query["params"])
        timed(naive, user, query["params"])
    say(f"  {len(planned)} queries, each way")
    for number, query in enumerate(planned):
        user = users[query["user"]]
        # Alternating which goes first: neither always finds the other's pages cached.
        first, second = (searched, naive) if number % 2 == 0 else (naive, searched)
        one = timed(first, user, query["params"])
        two = timed(second, user, query["params"])
        mine, theirs = (one, two) if first is searched else (two, one)
        query["search_ms"], query["search_outcome"] = mine
        query["naive_ms"], query["naive_outcome"] = theirs
        if number % 100 == 99:
            say(f"    {number + 1} done")
    results["queries"] = planned
    results["kinds"] = {}
    for kind in (*KINDS, "all"):
        chosen = [q for q in planned if kind in ("all", q["kind"])]
        results["kinds"][kind] = {
            "search": summary([q["search_ms"] for q in chosen]),
            "naive": summary([q["naive_ms"] for q in chosen]),
            "refused": sum(1 for q in chosen if isinstance(q["search_outcome"], str)),
            "empty": sum(1 for q in chosen if q["search_outcome"] == 0),
        }
    slowest = sorted(planned, key=lambda q: q["search_ms"], reverse=True)[:3]
    say("  EXPLAIN ANALYZE of the slowest three")
    results["slowest"] = [
        {**query, "explain": explain(users[query["user"]], query["params"])} for query in slowest
    ]
    overall = results["kinds"]["all"]["search"]["p99_ms"]
    say(f"  p99 over all {len(planned)} queries: {overall:.1f} ms")
    return results


def _url(connection: Any) -> str:
    database = connection.settings_dict
    return (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}"
    )


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH / "results" / f"{date.today().isoformat()}-search",
        help="the results folder (default: bench/results/<today>-search)",
    )
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite README.md from the folder's results.json",
    )
    args = parser.parse_args()
    if args.report_only:
        search_report.write(json.loads((args.out / "results.json").read_text()), args.out)
        return
    run(args.out, args.messages, args.keep)


if __name__ == "__main__":
    main()
