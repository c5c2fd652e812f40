"""chat.domain.writes and snapshots: numbering, resends, checks, edits, deletes, reads, resume."""

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
from chat.domain.direct import direct_room_open
from chat.domain.inputs import MAX_NUMBER
from chat.domain.snapshots import room_snapshot
from chat.domain.writes import message_create, message_delete, message_edit, room_read
from chat.errors import ChatError
from chat.models import Message, Mute, ReadState, Room
from tests.helpers import current_database_url, send

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


def code_of(call, **kwargs) -> str:
    """The ChatError code `call(**kwargs)` raises (fails if it raises none)."""
    with pytest.raises(ChatError) as caught:
        call(**kwargs)
    return caught.value.code


@pytest.fixture
def lounge(db):
    return Room.objects.create(name="Lounge", slug="lounge")


# --- numbering -------------------------------------------------------------


def test_messages_are_numbered_1_2_3_per_room(alice, bob, general, lounge):
    numbers = [send(general, alice).number, send(general, bob).number, send(general, alice).number]
    assert numbers == [1, 2, 3]
    # Another room counts on its own.
    assert send(lounge, alice).number == 1
    general.refresh_from_db()
    lounge.refresh_from_db()
    assert general.last_message_number == 3
    assert lounge.last_message_number == 1
    assert list(
        Message.objects.filter(room=general).order_by("number").values_list("number", flat=True)
    ) == [1, 2, 3]


def test_message_create_stores_the_stripped_body_and_author(alice, general):
    message, created = message_create(
        room_id=general.pk, author=alice, body="  hi there \n", client_id=None
    )
    assert created is True
    stored = Message.objects.get(pk=message.pk)
    assert stored.body == "hi there"
    assert stored.author == alice
    assert stored.client_id is None
    assert stored.edited is False
    assert stored.deleted_at is None


# --- idempotent client_id --------------------------------------------------


def test_same_client_id_same_author_and_room_is_stored_once(alice, general):
    first, created_first = message_create(
        room_id=general.pk, author=alice, body="one", client_id="c-1"
    )
    again, created_again = message_create(
        room_id=general.pk, author=alice, body="one (resent)", client_id="c-1"
    )
    assert created_first is True
    assert created_again is False
    assert again.pk == first.pk
    assert again.number == 1
    assert again.body == "one"  # the stored message, not the resend
    assert Message.objects.filter(room=general).count() == 1
    general.refresh_from_db()
    assert general.last_message_number == 1
    # The next new message takes the next number: a resend used none.
    assert send(general, alice, client_id="c-2").number == 2


def test_same_client_id_from_another_author_or_room_is_a_new_message(alice, bob, general, lounge):
    mine = send(general, alice, client_id="c-1")
    theirs, created_theirs = message_create(
        room_id=general.pk, author=bob, body="hello", client_id="c-1"
    )
    elsewhere, created_elsewhere = message_create(
        room_id=lounge.pk, author=alice, body="hello", client_id="c-1"
    )
    assert created_theirs is True and created_elsewhere is True
    assert len({mine.pk, theirs.pk, elsewhere.pk}) == 3
    assert (mine.number, theirs.number, elsewhere.number) == (1, 2, 1)


def test_messages_without_client_id_are_never_merged(alice, general):
    send(general, alice, body="same")
    send(general, alice, body="same")
    assert Message.objects.filter(room=general).count() == 2


# --- body validation -------------------------------------------------------


@pytest.mark.parametrize(
    "body, stored",
    [
        ("\u3000hello\u3000", "hello"),  # ideographic space
        ("\u00a0hello\u00a0", "hello"),  # no-break space
        ("\t\r\n hello \u2003\u2029", "hello"),  # tabs, line ends, em space, paragraph sep.
        ("a\u3000b", "a\u3000b"),  # only surrounding white space goes
    ],
)
def test_body_is_stripped_of_unicode_white_space(alice, general, body, stored):
    assert send(general, alice, body=body).body == stored


@pytest.mark.parametrize("body", ["", "   ", "\u3000\u00a0\n\t", "\u2028\u205f"])
def test_empty_body_is_refused(alice, general, body):
    assert (
        code_of(message_create, room_id=general.pk, author=alice, body=body, client_id=None)
        == "empty"
    )
    assert not Message.objects.exists()


def test_body_limit_counts_code_points(alice, general):
    # 4000 astral characters are 8000 UTF-16 units and 16000 UTF-8 bytes: still fine.
    longest = "\U0001f600" * 4000
    assert send(general, alice, body=longest).body == longest
    # Surrounding white space does not count.
    assert send(general, alice, body="  " + "x" * 4000 + "  ").body == "x" * 4000
    assert (
        code_of(message_create, room_id=general.pk, author=alice, body="x" * 4001, client_id=None)
        == "too_long"
    )
    assert Message.objects.count() == 2


@pytest.mark.parametrize("body", ["a\x00b", "\x00", "a\ud800b", "\udfff", "x\ud83d"])
def test_nul_and_lone_surrogates_are_bad_requests(alice, general, body):
    assert (
        code_of(message_create, room_id=general.pk, author=alice, body=body, client_id=None)
        == "bad_request"
    )
    assert not Message.objects.exists()


@pytest.mark.parametrize("body", [None, 5, 1.5, True, ["hi"], {"text": "hi"}, b"hi"])
def test_body_that_is_not_a_string_is_a_bad_request(alice, general, body):
    assert (
        code_of(message_create, room_id=general.pk, author=alice, body=body, client_id=None)
        == "bad_request"
    )
    assert not Message.objects.exists()


# --- client_id validation --------------------------------------------------


@pytest.mark.parametrize("client_id", ["", "x" * 65, 5, True, ["c"], "a\x00", "\ud800"])
def test_bad_client_id_is_refused(alice, general, client_id):
    assert (
        code_of(message_create, room_id=general.pk, author=alice, body="hi", client_id=client_id)
        == "bad_request"
    )
    assert not Message.objects.exists()


@pytest.mark.parametrize("client_id", ["c", "x" * 64, "\U0001f600" * 64, None])
def test_good_client_id_is_stored(alice, general, client_id):
    assert send(general, alice, client_id=client_id).client_id == client_id


# --- archived rooms --------------------------------------------------------


def test_archived_room_refuses_new_messages_and_stores_nothing(alice, general):
    general.archived = True
    general.save()
    assert (
        code_of(message_create, room_id=general.pk, author=alice, body="hi", client_id="c")
        == "room_archived"
    )
    assert not Message.objects.exists()
    general.refresh_from_db()
    assert general.last_message_number == 0


def test_archived_room_refuses_edits_and_deletes_but_not_moderation(alice, general):
    message = send(general, alice)
    Room.objects.filter(pk=general.pk).update(archived=True)
    assert (
        code_of(message_edit, room_id=general.pk, number=1, user=alice, body="changed")
        == "room_archived"
    )
    assert code_of(message_delete, room_id=general.pk, number=1, user=alice) == "room_archived"
    message.refresh_from_db()
    assert message.body == "hello" and message.deleted_at is None
    # The admin's path (docs/protocol.md): moderators delete in archived rooms too.
    message_delete(room_id=general.pk, number=1, user=alice, moderating=True)
    message.refresh_from_db()
    assert message.deleted_at is not None


# --- edit --------------------------------------------------------------------


def test_author_edits_a_message(alice, general):
    send(general, alice, body="frist")
    edited = message_edit(room_id=general.pk, number=1, user=alice, body="  first  ").message
    assert edited.body == "first"
    assert edited.edited is True
    stored = Message.objects.get(room=general, number=1)
    assert (stored.body, stored.edited, stored.number) == ("first", True, 1)


def test_only_the_author_edits(alice, bob, make_user, general):
    send(general, alice, body="mine")
    staff = make_user("mod", is_staff=True)
    for user in (bob, staff):
        assert (
            code_of(message_edit, room_id=general.pk, number=1, user=user, body="theirs")
            == "forbidden"
        )
    stored = Message.objects.get(room=general, number=1)
    assert (stored.body, stored.edited) == ("mine", False)


def test_edit_validates_the_body_and_the_id(alice, general):
    send(general, alice)
    assert code_of(message_edit, room_id=general.pk, number=1, user=alice, body=" ") == "empty"
    assert (
        code_of(message_edit, room_id=general.pk, number=1, user=alice, body="x" * 4001)
        == "too_long"
    )
    assert (
        code_of(message_edit, room_id=general.pk, number=1, user=alice, body="\x00")
        == "bad_request"
    )
    for number in ("1", 1.0, True, None, -1):
        assert (
            code_of(message_edit, room_id=general.pk, number=number, user=alice, body="x")
            == "bad_request"
        )
    for number in (0, 2, MAX_NUMBER + 1, 10**30):
        assert (
            code_of(message_edit, room_id=general.pk, number=number, user=alice, body="x")
            == "not_found"
        )
    assert Message.objects.get().edited is False


# --- delete ------------------------------------------------------------------


def test_author_deletes_and_the_number_is_kept(alice, general):
    send(general, alice, body="one")
    send(general, alice, body="two")
    deleted = message_delete(room_id=general.pk, number=2, user=alice).message
    assert deleted.number == 2
    stored = Message.objects.get(room=general, number=2)
    assert stored.deleted_at is not None
    # The next message gets the next number: the deleted one keeps its own.
    assert send(general, alice, body="three").number == 3
    general.refresh_from_db()
    assert general.last_message_number == 3
    # A deleted message cannot be deleted or edited again.
    assert code_of(message_delete, room_id=general.pk, number=2, user=alice) == "not_found"
    assert (
        code_of(message_edit, room_id=general.pk, number=2, user=alice, body="back") == "not_found"
    )


def test_others_may_not_delete_but_staff_may(alice, bob, make_user, general):
    send(general, alice)
    assert code_of(message_delete, room_id=general.pk, number=1, user=bob) == "forbidden"
    assert Message.objects.get().deleted_at is None
    staff = make_user("mod", is_staff=True)
    message_delete(room_id=general.pk, number=1, user=staff)
    assert Message.objects.get().deleted_at is not None


def test_deleted_messages_are_left_out_of_pages_and_snapshots(alice, general):
    for index in range(1, 6):
        send(general, alice, body=f"m{index}")
    message_delete(room_id=general.pk, number=3, user=alice)

    messages, has_more = Message.objects.page(room_id=general.pk, limit=50)
    assert [m.number for m in messages] == [1, 2, 4, 5]
    assert has_more is False

    messages, has_more = Message.objects.page(room_id=general.pk, limit=2, before=5)
    assert [m.number for m in messages] == [2, 4]
    assert has_more is True

    messages, has_more = Message.objects.page(room_id=general.pk, limit=2, after=1)
    assert [m.number for m in messages] == [2, 4]
    assert has_more is True

    snapshot = room_snapshot(room_id=general.pk, after=1)
    assert [m.number for m in snapshot.messages] == [2, 4, 5]
    # The deleted message still counts in the newest number (welcome.last_id).
    assert snapshot.last_number == 5
    assert snapshot.gap is None


def test_page_is_ascending_with_has_more_both_ways(alice, general):
    for _ in range(7):
        send(general, alice)
    newest, has_more = Message.objects.page(room_id=general.pk, limit=3)
    assert [m.number for m in newest] == [5, 6, 7] and has_more is True
    older, has_more = Message.objects.page(room_id=general.pk, limit=3, before=5)
    assert [m.number for m in older] == [2, 3, 4] and has_more is True
    oldest, has_more = Message.objects.page(room_id=general.pk, limit=3, before=2)
    assert [m.number for m in oldest] == [1] and has_more is False
    forward, has_more = Message.objects.page(room_id=general.pk, limit=3, after=4)
    assert [m.number for m in forward] == [5, 6, 7] and has_more is False
    forward, has_more = Message.objects.page(room_id=general.pk, limit=3, after=3)
    assert [m.number for m in forward] == [4, 5, 6] and has_more is True


def test_around_centres_the_page_on_a_message_even_when_it_is_deleted(alice, general):
    for _ in range(9):
        send(general, alice)
    message_delete(room_id=general.pk, number=5, user=alice)

    page = Message.objects.history(room_id=general.pk, around=6, limit=4)
    assert [m.number for m in page.messages] == [3, 4, 6, 7]
    assert (page.has_older, page.has_newer) == (True, True)

    # A deleted message is not shown, but where it was is.
    page = Message.objects.history(room_id=general.pk, around=5, limit=4)
    assert [m.number for m in page.messages] == [3, 4, 6, 7]

    # At either end the page fills from the other side.
    page = Message.objects.history(room_id=general.pk, around=1, limit=4)
    assert [m.number for m in page.messages] == [1, 2, 3, 4]
    assert (page.has_older, page.has_newer) == (False, True)
    page = Message.objects.history(room_id=general.pk, around=9, limit=4)
    assert [m.number for m in page.messages] == [6, 7, 8, 9]
    assert (page.has_older, page.has_newer) == (True, False)

    page = Message.objects.history(room_id=general.pk, around=9, limit=5)
    assert [m.number for m in page.messages] == [4, 6, 7, 8, 9]

    # Beyond the newest: the newest page, and nothing newer.
    page = Message.objects.history(room_id=general.pk, around=1000, limit=4)
    assert [m.number for m in page.messages] == [6, 7, 8, 9]
    assert (page.has_older, page.has_newer) == (True, False)


# --- read marks ----------------------------------------------------------------


def test_room_read_never_moves_backwards_and_clamps_to_the_newest(alice, bob, general):
    for _ in range(5):
        send(general, bob)
    assert room_read(room=general, user=alice, number=3).number == 3
    assert room_read(room=general, user=alice, number=1).number == 3
    assert ReadState.objects.get(user=alice, room=general).last_read_number == 3
    assert room_read(room=general, user=alice, number=10**6).number == 5
    assert ReadState.objects.get(user=alice, room=general).last_read_number == 5
    assert room_read(room=general, user=alice, number=0).number == 5
    # Later messages are unread again, up to where the mark is moved.
    send(general, bob)
    assert room_read(room=general, user=alice, number=6).number == 6
    assert ReadState.objects.filter(user=alice).count() == 1


def test_room_read_in_an_empty_room_stays_at_zero(alice, general):
    assert room_read(room=general, user=alice, number=7).number == 0
    assert ReadState.objects.get(user=alice, room=general).last_read_number == 0


@pytest.mark.parametrize("number", [-1, "3", 2.0, True, None])
def test_room_read_refuses_what_is_not_a_whole_number(alice, general, number):
    assert code_of(room_read, room=general, user=alice, number=number) == "bad_request"
    assert not ReadState.objects.exists()


# --- snapshots (resume) -------------------------------------------------------


def test_snapshot_without_after_or_at_the_end_replays_nothing(alice, general):
    for _ in range(3):
        send(general, alice)
    for after in (None, 3, 99):
        snapshot = room_snapshot(room_id=general.pk, after=after)
        assert snapshot.last_number == 3
        assert snapshot.messages == []
        assert snapshot.gap is None
    snapshot = room_snapshot(room_id=general.pk, after=0)
    assert [m.number for m in snapshot.messages] == [1, 2, 3]


def test_snapshot_beyond_the_replay_limit_reports_a_gap(alice, general, settings):
    settings.CHAT_REPLAY_MAX = 5
    for _ in range(12):
        send(general, alice)

    # Exactly the limit missed: everything is replayed, no gap.
    snapshot = room_snapshot(room_id=general.pk, after=7)
    assert [m.number for m in snapshot.messages] == [8, 9, 10, 11, 12]
    assert snapshot.gap is None

    # One more: the newest 5 are replayed, preceded by the gap (after, first replayed).
    snapshot = room_snapshot(room_id=general.pk, after=6)
    assert [m.number for m in snapshot.messages] == [8, 9, 10, 11, 12]
    assert snapshot.gap == (6, 8)

    snapshot = room_snapshot(room_id=general.pk, after=0)
    assert [m.number for m in snapshot.messages] == [8, 9, 10, 11, 12]
    assert snapshot.gap == (0, 8)
    assert snapshot.last_number == 12


# --- direct rooms ---------------------------------------------------------------


def test_direct_room_is_created_once_with_both_members(alice, bob):
    room = direct_room_open(user=alice, username="bob")
    assert room.kind == Room.Kind.DIRECT
    assert set(room.members.all()) == {alice, bob}
    again = direct_room_open(user=alice, username="bob")
    assert again.pk == room.pk
    # The same room whichever side opens it.
    assert direct_room_open(user=bob, username="alice").pk == room.pk
    assert Room.objects.filter(kind=Room.Kind.DIRECT).count() == 1
    assert room.members.count() == 2


def test_direct_rooms_of_different_pairs_differ(alice, bob, make_user):
    carol = make_user("carol")
    with_bob = direct_room_open(user=alice, username="bob")
    with_carol = direct_room_open(user=alice, username="carol")
    assert with_bob.pk != with_carol.pk
    assert set(with_carol.members.all()) == {alice, carol}


def test_direct_room_refuses_unknown_inactive_and_oneself(alice, make_user):
    make_user("sleeper", is_active=False)
    for username in ("nobody", "sleeper", "alice", ""):
        assert code_of(direct_room_open, user=alice, username=username) == "not_found"
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


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
