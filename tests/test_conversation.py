"""Replies, mentions, reactions and notification settings, at the service layer."""

from __future__ import annotations

import pytest

from chat.domain import payloads
from chat.domain.attention import notify_set, room_entries, room_members
from chat.domain.mentions import mentioned_names
from chat.domain.reactions import emoji_clean, reaction_set
from chat.domain.writes import message_create, message_delete, message_edit, room_read
from chat.errors import ChatError
from chat.models import Mention, Message, Mute, Reaction, Room
from tests.helpers import code_of, send

pytestmark = pytest.mark.django_db


def payload(message: Message, *, for_author: bool = False) -> dict:
    return payloads.message_payload(
        Message.objects.for_wire().get(pk=message.pk), for_author=for_author
    )


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def private(alice, bob):
    room = Room.objects.create(name="Team", slug="team", kind=Room.Kind.PRIVATE)
    room.members.add(alice, bob)
    return room


# --- replies -----------------------------------------------------------------------------


def test_a_reply_quotes_its_original(alice, bob, general):
    original = send(general, alice, body="Lunch at noon?\nOr one?")
    reply, _ = message_create(
        room_id=general.pk, author=bob, body="Noon works", client_id=None, reply_to=1
    )
    assert reply.reply_to_id == original.pk
    assert payload(reply)["reply_to"] == {
        "id": 1,
        "user": "alice",
        "body": "Lunch at noon?",  # the first line
        "deleted": False,
    }
    # The message just written carries it too, with no read-back.
    assert payloads.message_payload(reply, for_author=True)["reply_to"]["id"] == 1


def test_a_reply_to_a_message_deleted_later_shows_it_deleted(alice, bob, general):
    send(general, alice, body="oops")
    reply, _ = message_create(room_id=general.pk, author=bob, body="?", client_id=None, reply_to=1)
    message_delete(room_id=general.pk, number=1, user=alice)
    assert payload(reply)["reply_to"] == {"id": 1, "user": "alice", "body": "", "deleted": True}


def test_a_long_first_line_is_shortened(alice, bob, general):
    send(general, alice, body="x" * 300)
    reply, _ = message_create(room_id=general.pk, author=bob, body="!", client_id=None, reply_to=1)
    quoted = payload(reply)["reply_to"]["body"]
    assert len(quoted) == payloads.SNIPPET_MAX and quoted.endswith("…")


@pytest.mark.parametrize("reply_to", [2, 99, 0, 2**63, -1, "1", 1.0, True])
def test_a_reply_to_no_message_of_this_room_stores_nothing(alice, bob, general, reply_to):
    other = Room.objects.create(name="Other", slug="other")
    send(other, alice, body="elsewhere")
    send(other, alice, body="elsewhere too")  # number 2 exists, in another room
    send(general, alice, body="here")
    message_delete(room_id=general.pk, number=1, user=alice)  # and 1 is deleted
    send(general, alice, body="two")
    Message.objects.filter(room=general, number=2).delete()  # 2 is gone for good
    refused = code_of(
        message_create, room_id=general.pk, author=bob, body="hi", client_id=None, reply_to=reply_to
    )
    assert refused == "bad_request"
    assert not Message.objects.filter(room=general, author=bob).exists()
    general.refresh_from_db()
    assert general.last_message_number == 2  # the number went back


# --- mentions ----------------------------------------------------------------------------


def test_mentions_are_found_in_the_body():
    body = "@ann, @ben. cc @cat-1 and mail ann@example.com; @@dan @ann again"
    # Commas end a name; a trailing dot may (Django allows dots in usernames).
    assert mentioned_names(body) == ["ann", "ben.", "ben", "cat-1", "@dan"]


def test_a_mention_of_a_member_is_stored_and_shown(alice, bob, carol, general):
    message = send(general, alice, body="@bob and @carol: look. @alice @nobody")
    mentioned = set(
        Mention.objects.filter(message=message).values_list("user__username", flat=True)
    )
    assert mentioned == {"bob", "carol"}  # not the author, not a stranger
    assert payload(message)["mentions"] == ["bob", "carol"]


def test_in_a_private_room_only_members_are_mentioned(alice, bob, carol, private):
    message = send(private, alice, body="@bob @carol")
    assert payload(message)["mentions"] == ["bob"]
    assert not Mention.objects.filter(user=carol).exists()


def test_mentions_count_apart_from_unread_until_read(alice, bob, carol, general):
    send(general, alice, body="hello")
    send(general, alice, body="@bob see this")
    send(general, carol, body="@bob and this")
    entry = {e.room.slug: e for e in room_entries(bob)}["general"]
    assert (entry.unread, entry.mentions) == (3, 2)
    room_read(room=general, user=bob, number=2)
    entry = {e.room.slug: e for e in room_entries(bob)}["general"]
    assert (entry.unread, entry.mentions) == (1, 1)
    message_delete(room_id=general.pk, number=3, user=carol)
    entry = {e.room.slug: e for e in room_entries(bob)}["general"]
    assert (entry.unread, entry.mentions) == (0, 0)


def test_an_edit_changes_the_mentions_and_says_whose(alice, bob, carol, general):
    send(general, alice, body="@bob")
    edited = message_edit(room_id=general.pk, number=1, user=alice, body="@carol instead")
    assert edited.mentions == ["carol"]
    assert edited.mentions_changed == sorted([bob.pk, carol.pk])
    assert list(Mention.objects.values_list("user__username", flat=True)) == ["carol"]
    again = message_edit(room_id=general.pk, number=1, user=alice, body="@carol, typo fixed")
    assert again.mentions_changed == []


def test_members_to_complete_a_mention(alice, bob, carol, general, private, make_user):
    make_user("bobby")
    send(general, bob, body="hi")
    send(general, carol, body="hi")
    assert room_members(user=alice, slug="general", prefix="") == ["carol", "bob"]
    assert room_members(user=alice, slug="general", prefix="bo") == ["bob"]
    assert room_members(user=alice, slug="team", prefix="") == ["alice", "bob"]
    assert code_of(room_members, user=carol, slug="team", prefix="") == "not_found"
    assert code_of(room_members, user=alice, slug="team", prefix="x" * 151) == "bad_request"


# --- reactions ---------------------------------------------------------------------------


@pytest.mark.parametrize("emoji", ["👍", "❤️", "🇫🇷", "1️⃣", "👨‍👩‍👧", "👍🏽", "🏳️‍🌈", "™️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"])
def test_any_single_emoji_is_a_reaction(emoji):
    assert emoji_clean(emoji) == emoji


@pytest.mark.parametrize(
    "emoji", ["", "a", "1", "#", "™", "👍👍", "x👍", "👍 ", "\u200d", "👍\u0301", 5, None, ["👍"]]
)
def test_anything_else_is_refused(emoji):
    with pytest.raises(ChatError) as refused:
        emoji_clean(emoji)
    assert refused.value.code == "bad_request"


def test_reactions_add_once_per_person_and_come_off_again(alice, bob, general):
    send(general, alice, body="ship it?")
    first = reaction_set(room_id=general.pk, number=1, user=bob, emoji="👍", present=True)
    assert (first.changed, first.version) == (True, 1)
    again = reaction_set(room_id=general.pk, number=1, user=bob, emoji="👍", present=True)
    assert (again.changed, again.version) == (False, 1)
    reaction_set(room_id=general.pk, number=1, user=alice, emoji="👍", present=True)
    both = reaction_set(room_id=general.pk, number=1, user=alice, emoji="🎉", present=True)
    assert payloads.reactions_payload(both.reactions) == [
        {"emoji": "👍", "count": 2, "users": ["bob", "alice"]},
        {"emoji": "🎉", "count": 1, "users": ["alice"]},
    ]
    assert both.version == 3
    off = reaction_set(room_id=general.pk, number=1, user=bob, emoji="👍", present=False)
    assert (off.changed, off.version) == (True, 4)
    assert Reaction.objects.count() == 2
    message = Message.objects.get(number=1)
    assert payload(message)["reactions"][0] == {"emoji": "👍", "count": 1, "users": ["alice"]}


def test_a_reaction_on_a_deleted_or_missing_message_is_not_found(alice, bob, general):
    send(general, alice, body="gone soon")
    message_delete(room_id=general.pk, number=1, user=alice)
    for number in (1, 2, 2**64):
        refused = code_of(
            reaction_set, room_id=general.pk, number=number, user=bob, emoji="👍", present=True
        )
        assert refused == "not_found"
    assert not Reaction.objects.exists()


def test_reactions_in_an_archived_room_or_by_a_muted_user_are_refused(alice, bob, general):
    send(general, alice, body="hi")
    Mute.objects.create(user=bob, room=general)
    assert (
        code_of(reaction_set, room_id=general.pk, number=1, user=bob, emoji="👍", present=True)
        == "muted"
    )
    Room.objects.filter(pk=general.pk).update(archived=True)
    refused = code_of(
        reaction_set, room_id=general.pk, number=1, user=alice, emoji="👍", present=True
    )
    assert refused == "room_archived"
    assert not Reaction.objects.exists()


# --- notification settings ---------------------------------------------------------------


def test_notification_settings_default_by_kind_and_can_be_set(alice, bob, general):
    direct = Room.objects.create(name="a & b", slug="dm-x", kind=Room.Kind.DIRECT)
    direct.members.add(alice, bob)
    entries = {entry.room.slug: entry.notify for entry in room_entries(alice)}
    assert (entries["general"], entries["dm-x"]) == ("mentions", "all")
    assert notify_set(user=alice, room=general, notify="none") == "none"
    assert notify_set(user=alice, room=general, notify="all") == "all"
    assert {e.room.slug: e.notify for e in room_entries(alice)}["general"] == "all"
    for bad in ("everything", "", None, 1):
        assert code_of(notify_set, user=alice, room=general, notify=bad) == "bad_request"
