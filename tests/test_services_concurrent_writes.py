"""chat.domain.writes under load: concurrent writers on SQLite and PostgreSQL alike,
two processes in one room, and the few statements of a plain message's transaction
(a socket's: chat.actions.plain).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chat.domain import events
from chat.domain.author_state import author_state_columns, author_state_query
from chat.domain.writes import message_create
from chat.errors import ChatError
from chat.models import Message, Mute, Room
from tests.helpers import code_of, current_database_url, send

pytestmark = pytest.mark.django_db


ROOT = Path(__file__).resolve().parent.parent


# --- concurrent writers, on SQLite and PostgreSQL alike ----------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_are_numbered_without_holes_or_duplicates(make_user, general):
    threads_count, per_thread = 8, 10
    authors = [make_user(f"user{index}") for index in range(threads_count)]
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def worker(author) -> None:
        try:
            start.wait(timeout=10)
            for index in range(per_thread):
                message_create(
                    room_id=general.pk,
                    author=author,
                    body=f"{author.username} {index}",
                    client_id=None,
                )
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(author,)) for author in authors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    total = threads_count * per_thread
    numbers = list(
        Message.objects.filter(room=general).order_by("number").values_list("number", flat=True)
    )
    assert numbers == list(range(1, total + 1))
    general.refresh_from_db()
    assert general.last_message_number == total
    # Each author's own messages are numbered in the order that author sent them.
    for author in authors:
        bodies = list(
            Message.objects.filter(room=general, author=author)
            .order_by("number")
            .values_list("body", flat=True)
        )
        assert bodies == [f"{author.username} {index}" for index in range(per_thread)]


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_two_processes_writing_one_room_number_it_without_holes(make_user, general):
    """Two worker processes store into one room at once, as `make run`'s two do.

    On SQLite this is what WAL, the busy timeout and IMMEDIATE transactions are
    for: without them, one writer fails with "database is locked".
    """
    per_process = 60
    authors = [make_user("ann"), make_user("ben")]
    start_at = time.time() + 3  # both processes have set up Django by then
    env = {**os.environ, "DATABASE_URL": current_database_url()}
    writers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.writer"),
                *(str(general.pk), str(author.pk), str(per_process), str(start_at)),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for author in authors
    ]
    results = []
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err[-3000:]
        results.append(json.loads(out))

    # They really wrote at the same time: each started before the other finished.
    # (SQLite's lock is not fair: one may well store all of its messages first,
    # while the other waits on the busy timeout instead of failing.)
    assert results[0]["first"] < results[1]["last"] and results[1]["first"] < results[0]["last"]
    # Each resend answered with the message already stored, and stored nothing.
    for result in results:
        assert result["resent"] == result["numbers"]
        assert result["numbers"] == sorted(result["numbers"])
    mixed = sorted(results[0]["numbers"] + results[1]["numbers"])
    assert mixed == list(range(1, 2 * per_process + 1))
    rows = list(
        Message.objects.filter(room=general).order_by("number").values_list("number", "body")
    )
    assert [number for number, _ in rows] == mixed
    assert all(body.endswith(" edited") for _, body in rows)
    general.refresh_from_db()
    assert general.last_message_number == 2 * per_process


def test_body_strip_removes_only_unicode_white_space(general, alice):
    # U+001C..U+001F are not Unicode white space, though str.isspace() says so.
    message, _ = message_create(
        room_id=general.pk, author=alice, body="\u3000\x1c hi \x1f\xa0", client_id=None
    )
    assert message.body == "\x1c hi \x1f"


def test_saving_a_stale_room_never_rolls_back_its_counter(general, alice):
    stale = Room.objects.get(pk=general.pk)
    message_create(room_id=general.pk, author=alice, body="one", client_id=None)
    stale.description = "edited in the admin meanwhile"
    stale.save()
    general.refresh_from_db()
    assert general.last_message_number == 1
    assert general.description == "edited in the admin meanwhile"
    second, _ = message_create(room_id=general.pk, author=alice, body="two", client_id=None)
    assert second.number == 2


def test_resend_after_archiving_gets_the_stored_message(general, alice):
    original, _ = message_create(room_id=general.pk, author=alice, body="hi", client_id="c-1")
    Room.objects.filter(pk=general.pk).update(archived=True)
    again, created = message_create(room_id=general.pk, author=alice, body="hi", client_id="c-1")
    assert (again.pk, created) == (original.pk, False)
    with pytest.raises(ChatError) as refused:
        message_create(room_id=general.pk, author=alice, body="new", client_id="c-2")
    assert refused.value.code == "room_archived"


# --- a plain message: the transaction's statements (a socket's: chat.actions.plain) ---------


@pytest.mark.django_db(transaction=True)
def test_a_message_is_a_few_statements_whatever_the_room(alice, general):
    """The author's lock, their state, the window's count, the number, the insert (and
    the transaction's own); a socket's plain message on PostgreSQL takes chat.actions.plain."""
    for _ in range(3):
        send(general, alice)
    with CaptureQueriesContext(connection) as queries:
        message, created = message_create(
            room_id=general.pk, author=alice, body="hello", client_id="c1"
        )
    assert created and message.number == 4
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    assert len(statements) == 5, statements
    # What the sockets are sent is what the database has.
    stored = Message.objects.for_wire().get(pk=message.pk)
    for for_author in (True, False):
        assert events.message_frame(message, for_author=for_author) == events.message_frame(
            stored, for_author=for_author
        )
    # Both renderings at once, as the broadcast carries them, are the same two frames.
    assert events.message_frames(message) == (
        events.message_frame(message, for_author=False),
        events.message_frame(message, for_author=True),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("client_id", [None, "c1"])
def test_the_author_state_columns_are_the_ones_the_database_returns(alice, general, client_id):
    """Both paths read the author's state by the names taken from the compiled query: they
    are the names, in order, of the columns the database answers with."""
    sql, params = author_state_query(author_id=alice.pk, room_id=general.pk, client_id=client_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        described = tuple(column[0] for column in cursor.description)
    columns = author_state_columns(with_client_id=client_id is not None)
    assert columns == described
    assert {"is_active", "muted"} <= set(columns)
    assert ("resent" in columns) == (client_id is not None)


def _muted(alice, general) -> None:
    Mute.objects.create(user=alice, room=general)


def _deactivated(alice, general) -> None:
    alice.is_active = False
    alice.save()


def _archived(alice, general) -> None:
    Room.objects.filter(pk=general.pk).update(archived=True)


def _broadcast(alice, general) -> None:
    Room.objects.filter(pk=general.pk).update(kind=Room.Kind.BROADCAST)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        (_muted, "muted"),
        (_deactivated, "forbidden"),
        (_archived, "room_archived"),
        (_broadcast, "forbidden"),
    ],
)
def test_what_stands_in_a_plain_messages_way_is_refused_exactly_and_costs_no_number(
    arrange, code, alice, general
):
    send(general, alice, "before")
    arrange(alice, general)
    assert code_of(message_create, room_id=general.pk, author=alice, body="one", client_id="c") == (
        code
    )
    general.refresh_from_db()
    assert general.last_message_number == Message.objects.filter(room=general).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_plain_resend_gets_the_stored_message_and_costs_no_number(alice, general):
    first, _ = message_create(room_id=general.pk, author=alice, body="one", client_id="c1")
    again, created = message_create(room_id=general.pk, author=alice, body="one", client_id="c1")
    assert (again.pk, again.number, created) == (first.pk, 1, False)
    general.refresh_from_db()
    assert general.last_message_number == Message.objects.filter(room=general).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_client_id_sent_twice_at_once_is_stored_once(alice, general):
    """One send holds the room (its transaction not yet committed) while the other
    arrives: the second finds the first's message once it commits."""
    holding = threading.Event()
    stored: list[Message] = []

    def first() -> None:
        try:
            with transaction.atomic():
                stored.append(
                    message_create(room_id=general.pk, author=alice, body="one", client_id="c1")[0]
                )
                holding.set()
                time.sleep(0.5)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    message, created = message_create(room_id=general.pk, author=alice, body="one", client_id="c1")
    thread.join(10)
    assert (message.pk, message.number, created) == (stored[0].pk, 1, False)
    general.refresh_from_db()
    assert general.last_message_number == 1
    assert Message.objects.filter(room=general).count() == 1
