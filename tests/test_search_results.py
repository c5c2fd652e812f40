"""Message search (chat/search/) on the test's database: what is found, by whom, with
which filters, ranked and paged, with its snippet.

Every test here runs on SQLite and on PostgreSQL alike (`make test` runs both):
the same behaviour from FTS5 and from a GIN index, except where a test says
how the two differ.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from chat.domain.writes import message_delete, message_edit
from chat.errors import ChatError
from chat.models import Message, Room
from chat.search import ranking as search_ranking
from chat.search.parse import search_parse
from chat.search.ranking import messages_search
from tests.helpers import send
from tests.search_helpers import found
from tests.search_helpers import rooms as rooms  # a fixture


def test_a_word_finds_its_messages_in_every_form(rooms, alice):
    send(rooms["general"], alice, "We deploy on Fridays")
    send(rooms["general"], alice, "deploying now")
    send(rooms["general"], alice, "nothing to see")
    assert set(found(alice, "deploys")) == {"We deploy on Fridays", "deploying now"}
    assert found(alice, "FRIDAY") == ["We deploy on Fridays"]


def test_phrases_or_and_exclusions(rooms, alice):
    general = rooms["general"]
    send(general, alice, "the big dog barked")
    send(general, alice, "a dog, big and loud")
    send(general, alice, "a cat")
    assert found(alice, '"big dog"') == ["the big dog barked"]
    assert set(found(alice, "dog -barked")) == {"a dog, big and loud"}
    assert set(found(alice, "cat or barked")) == {"a cat", "the big dog barked"}
    assert found(alice, '-"big dog" dog') == ["a dog, big and loud"]


def test_better_matches_come_first_and_newer_first_among_equals(rooms, alice):
    general = rooms["general"]
    older = send(general, alice, "deploy")
    send(general, alice, "a long message that mentions deploy once among many other words")
    best = send(general, alice, "deploy deploy deploy")
    newer = send(general, alice, "deploy")
    order = found(alice, "deploy")
    assert order[0] == best.body
    assert order[-1] == "a long message that mentions deploy once among many other words"
    ids = [hit.message.pk for hit in search_hits(alice, "deploy")]
    assert ids.index(newer.pk) < ids.index(older.pk)


def search_hits(reader, text: str, **filters):
    return messages_search(user=reader, search=search_parse({"q": text, **filters})).hits


def test_deleted_messages_are_never_found(rooms, alice):
    kept = send(rooms["general"], alice, "release notes")
    gone = send(rooms["general"], alice, "release party")
    message_delete(room_id=gone.room_id, number=gone.number, user=alice)
    assert [hit.message.pk for hit in search_hits(alice, "release")] == [kept.pk]


def test_an_edit_is_found_by_its_new_words_only(rooms, alice):
    message = send(rooms["general"], alice, "meeting at noon")
    message_edit(room_id=message.room_id, number=message.number, user=alice, body="lunch at one")
    assert found(alice, "noon") == []
    assert found(alice, "lunch") == ["lunch at one"]


def test_messages_of_a_deleted_room_leave_the_index(rooms, alice):
    doomed = Room.objects.create(slug="doomed", name="Doomed")
    send(doomed, alice, "ephemeral words")
    send(rooms["general"], alice, "durable words")
    doomed.delete()
    assert found(alice, "words") == ["durable words"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # FTS5 compares its index with chat_message's rows: raises if they disagree.
            cursor.execute(
                "INSERT INTO chat_message_search(chat_message_search, rank)"
                " VALUES ('integrity-check', 1)"
            )


# --- who may find what -------------------------------------------------------------------


def test_private_room_messages_are_found_by_members_only(rooms, alice, bob):
    send(rooms["private"], alice, "the launch code is secret")
    carol = rooms["carol"]
    assert found(alice, "launch") == ["the launch code is secret"]
    assert found(bob, "launch") == ["the launch code is secret"]
    assert found(carol, "launch") == []
    rooms["private"].members.remove(bob)
    assert found(bob, "launch") == []


def test_direct_conversations_are_found_by_their_two_people_only(rooms, alice, bob):
    send(rooms["direct"], bob, "my secret salary")
    assert found(alice, "salary") == ["my secret salary"]
    assert found(bob, "salary") == ["my secret salary"]
    assert found(rooms["carol"], "salary") == []


@pytest.mark.parametrize("kind", ["private", "direct"])
def test_a_room_filter_on_a_room_the_user_may_not_read_is_a_room_that_does_not_exist(
    rooms, alice, kind
):
    send(rooms[kind], alice, "hidden words")
    carol = rooms["carol"]
    with pytest.raises(ChatError) as hidden:
        found(carol, "hidden", room=rooms[kind].slug)
    with pytest.raises(ChatError) as missing:
        found(carol, "hidden", room="no-such-room")
    assert (hidden.value.code, hidden.value.detail) == (missing.value.code, missing.value.detail)
    assert hidden.value.code == "not_found"


def test_broadcast_rooms_are_searched_by_everyone_signed_in(rooms, alice, make_user):
    stage = Room.objects.create(slug="stage", name="Stage", kind=Room.Kind.BROADCAST)
    publisher = make_user("host", is_staff=True)
    send(stage, publisher, "keynote starts soon")
    assert found(rooms["carol"], "keynote") == ["keynote starts soon"]


# --- filters ---------------------------------------------------------------------------------


def test_room_and_author_filters(rooms, alice, bob):
    send(rooms["general"], alice, "standup in general")
    send(rooms["private"], bob, "standup in ops")
    send(rooms["general"], bob, "standup by bob")
    assert set(found(alice, "standup", room="ops")) == {"standup in ops"}
    assert set(found(alice, "standup", user="bob")) == {"standup in ops", "standup by bob"}
    assert found(alice, "standup", room="general", user="bob") == ["standup by bob"]
    # Nobody of that name: nothing found, rather than an error.
    assert found(alice, "standup", user="nobody") == []


def test_date_filters(rooms, alice):
    general = rooms["general"]
    dates = {
        "report one": datetime(2026, 10, 31, 23, 59, tzinfo=UTC),
        "report two": datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
        "report three": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        "report four": datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
    }
    for body, created in dates.items():
        message = send(general, alice, body)
        Message.objects.filter(pk=message.pk).update(created=created)
    assert set(found(alice, "report", after="2026-11-01", before="2026-12-01")) == {
        "report two",
        "report three",
    }
    assert set(found(alice, "report", after="2026-11-30T13:00:00+01:00")) == {
        "report three",
        "report four",
    }
    assert set(found(alice, "report", before="2026-11-01T00:00:00.000001Z")) == {
        "report one",
        "report two",
    }


# --- pages and ranking's reach --------------------------------------------------------------


def test_results_come_a_page_at_a_time_without_repeats(rooms, alice, monkeypatch):
    monkeypatch.setattr(search_ranking, "SEARCH_PAGE_SIZE", 4)
    sent = {send(rooms["general"], alice, f"ticket {n}").pk for n in range(10)}
    seen = []
    for number, has_next in ((1, True), (2, True), (3, False)):
        page = messages_search(
            user=alice, search=search_parse({"q": "ticket", "page": f"{number}"})
        )
        assert page.has_next is has_next
        seen += [hit.message.pk for hit in page.hits]
    assert sorted(seen) == sorted(sent)
    page = messages_search(user=alice, search=search_parse({"q": "ticket", "page": "4"}))
    assert (page.hits, page.has_next) == ([], False)


def test_only_the_newest_matches_are_ranked(rooms, alice, monkeypatch):
    monkeypatch.setattr(search_ranking, "SEARCH_CANDIDATES", 3)
    best = send(rooms["general"], alice, "alert alert alert alert")
    for n in range(3):
        send(rooms["general"], alice, f"alert number {n}")
    assert best.body not in found(alice, "alert")
    assert len(found(alice, "alert")) == 3


def test_every_page_holds_the_best_of_what_is_left(rooms, alice, monkeypatch):
    monkeypatch.setattr(search_ranking, "SEARCH_PAGE_SIZE", 2)
    bodies = ["note", "note note note", "note and other words", "note note"]
    for body in bodies:
        send(rooms["general"], alice, body)
    first = found(alice, "note")
    second = found(alice, "note", page="2")
    assert first[0] == "note note note"
    assert sorted(first + second) == sorted(bodies)


# --- snippets, from each database -------------------------------------------------------------


def test_hits_carry_their_snippet_with_the_matches_marked(rooms, alice):
    send(rooms["general"], alice, "Deploying <script>alert(1)</script> & more")
    (hit,) = search_hits(alice, "deploy alert")
    assert [segment.text for segment in hit.snippet if segment.match] == ["Deploying", "alert"]
    assert "".join(segment.text for segment in hit.snippet) == hit.message.body


def test_the_snippet_of_a_long_message_is_the_part_around_its_match(rooms, alice):
    body = (
        " ".join(f"filler{n}" for n in range(60))
        + " needle "
        + " ".join(f"tail{n}" for n in range(60))
    )
    send(rooms["general"], alice, body)
    (hit,) = search_hits(alice, "needle")
    text = "".join(segment.text for segment in hit.snippet)
    assert [segment.text for segment in hit.snippet if segment.match] == ["needle"]
    assert text.startswith("…") and text.endswith("…")
    assert len(text.split()) < 40
