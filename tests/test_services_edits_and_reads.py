"""chat.domain.writes and snapshots: edits, deletes, read marks, pages of history and
the snapshot a resume replays.
"""

from __future__ import annotations

import pytest

from chat.domain.inputs import MAX_NUMBER
from chat.domain.snapshots import room_snapshot
from chat.domain.writes import message_delete, message_edit, room_read
from chat.models import Message, ReadState
from tests.helpers import code_of, send

pytestmark = pytest.mark.django_db


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
