"""chat.domain.writes: storing a message. Numbering per room, resends by client_id,
the checks of body and client_id, archived rooms, and direct rooms opened once.
"""

from __future__ import annotations

import pytest

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_create, message_delete, message_edit
from chat.models import Message, Room
from tests.helpers import code_of, send

pytestmark = pytest.mark.django_db


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
