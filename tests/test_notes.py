"""The notes socket, driven by pycrdt's y-protocols helpers, on the real Redis and database."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from pycrdt import Doc, Text

from chat.models import NotesDocument, NotesUpdate, Room
from chat.notes import codec
from chat.notes.actions import notes_clear
from chat.notes.pace import Pace
from chat.notes.store import notes_text
from chat.protocol import CloseCode
from tests.notes_client import UPDATE, notes_open, step

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def stored(room: Room) -> tuple[str, int]:
    """The text as the database has it, and the number of update rows."""
    return notes_text(room_id=room.pk), NotesUpdate.objects.filter(room=room).count()


# --- codec and pace, no I/O -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no type
        b"\x80",  # a truncated varuint
        b"\x00\x02\x05ab",  # a byte array shorter than it says
        b"\x00\x02\x03abc",  # an update that does not decode
        b"\x00\x00\x02\xff\xff",  # a state vector that does not decode
        b"\x00\x07\x00",  # no such sync message
        b"\x09",  # no such message type
        b"\x01\x05\x01\x01\x01\x01{",  # an awareness state that is not JSON
        b"\x03\x00",  # bytes after the message
        b"\xff" * 9,  # a varuint past 53 bits
    ],
)
def test_malformed_messages_are_refused(data):
    with pytest.raises(codec.Malformed):
        codec.message_read(data)


def test_messages_read_as_written():
    doc = Doc()
    doc.get("notes", type=Text).insert(0, "hi")
    update = doc.get_update()
    assert codec.message_read(codec.sync_update(update)) == codec.SyncUpdate(update)
    assert codec.message_read(codec.sync_step1(doc.get_state())) == codec.SyncStep1(doc.get_state())
    entry = codec.AwarenessEntry(client_id=300, clock=2, state='{"user":{"name":"ann"}}')
    assert codec.message_read(codec.awareness([entry])) == codec.Awareness((entry,))
    assert codec.Reader(codec.acked(1000)[1:]).var_uint() == 1000


def test_pace_lets_count_through_then_spaces_the_rest():
    pace = Pace(2, 1)
    assert [pace.take(now=pace.at) for _ in range(2)] == [0.0, 0.0]
    assert pace.take(now=pace.at) == pytest.approx(0.5)
    assert pace.take(now=pace.at) == pytest.approx(1.0)
    assert pace.take(now=pace.at + 2) == 0.0


# --- the socket -----------------------------------------------------------------------------


async def test_sync_edit_and_see_another_clients_edits(alice, bob, general):
    ann = await notes_open(alice)
    ben = await notes_open(bob)
    await ann.edit("hello")
    await ben.until(lambda: str(ben) == "hello")
    await ben.edit(" world")
    await ann.until(lambda: str(ann) == "hello world")
    assert await stored(general) == ("hello world", 2)
    # A third client gets it all from the server's copy.
    cat = await notes_open(alice)
    assert str(cat) == "hello world"
    for client in (ann, ben, cat):
        await client.communicator.disconnect()


async def test_reconnect_after_a_missed_update(alice, bob, general):
    ann = await notes_open(alice)
    ben = await notes_open(bob)
    await ann.edit("one ")
    await ben.until(lambda: str(ben) == "one ")
    await ben.communicator.disconnect()
    await ann.edit("two ")
    await ann.pump()
    # Ben comes back with the document he had: sync step 1 brings what he missed,
    # and what he wrote offline reaches Ann.
    ben_doc = ben.doc
    ben_doc.get("notes", type=Text).insert(0, "zero ")
    ben = await notes_open(bob, doc=ben_doc)
    assert str(ben) == "zero one two "
    await ann.until(lambda: str(ann) == "zero one two ")
    assert (await stored(general))[0] == "zero one two "
    await ann.communicator.disconnect()
    await ben.communicator.disconnect()


async def test_acks_count_the_updates_stored(alice, general):
    ann = await notes_open(alice, query="acks=1")
    assert ann.acked == 1  # the answer to the server's step 1: nothing new, settled
    await ann.edit("a")
    await ann.edit("b")
    await ann.until(lambda: ann.acked == 3)
    assert await stored(general) == ("ab", 2)
    plain = await notes_open(alice)
    await plain.edit("c")
    await plain.pump()
    assert plain.acked == 0  # standard clients never get message 100
    await ann.communicator.disconnect()
    await plain.communicator.disconnect()


async def test_a_reader_reads_and_is_told_it_may_not_write(alice, bob, make_user):
    staff = await sync_to_async(make_user)("sam", is_staff=True)
    room = await sync_to_async(Room.objects.create)(name="News", slug="news", kind="broadcast")
    sam = await notes_open(staff, "news")
    await sam.edit("headline")
    reader = await notes_open(bob, "news")
    assert str(reader) == "headline"
    await reader.edit(" mine")
    await reader.until(lambda: reader.denied == [codec.READ_ONLY])
    assert await stored(room) == ("headline", 1)
    # Still open, still reading. (Its own refused words stay in its local copy: a
    # Yjs client keeps what it typed; where "!" lands beside them is the CRDT's order.)
    await sam.edit("!")
    await reader.until(lambda: "!" in str(reader))
    assert await stored(room) == ("headline!", 2)
    await sam.communicator.disconnect()
    await reader.communicator.disconnect()


async def test_an_archived_room_is_read_only(alice):
    room = await sync_to_async(Room.objects.create)(name="Old", slug="old", archived=True)
    ann = await notes_open(alice, "old")
    await ann.edit("x")
    await ann.until(lambda: ann.denied == [codec.ARCHIVED])
    assert await stored(room) == ("", 0)
    await ann.communicator.disconnect()


async def test_archiving_and_removal_reach_open_notes_sockets(alice, bob):
    """The room's moderation reaches an open notes socket as it reaches the room
    socket: archived, its next update is refused; a removed member is closed 4404."""
    room = await sync_to_async(Room.objects.create)(name="Team", slug="team", kind="private")
    await sync_to_async(room.members.add)(alice, bob)
    ann = await notes_open(alice, "team")
    ben = await notes_open(bob, "team")
    await ann.edit("plan")
    await ben.until(lambda: str(ben) == "plan")

    room.archived = True
    await sync_to_async(room.save)()
    await ann.pump()
    await ann.edit(" B")
    await ann.until(lambda: ann.denied == [codec.ARCHIVED])
    assert await stored(room) == ("plan", 1)
    # A refused update stays in the client's own copy, and its later edits build on
    # it: a client drops its copy after a refusal and syncs a fresh one (the page does).
    await ann.communicator.disconnect()
    room.archived = False
    await sync_to_async(room.save)()
    ann = await notes_open(alice, "team", query="acks=1")
    assert str(ann) == "plan"
    await ann.edit("!")
    await ben.until(lambda: str(ben) == "plan!")

    await sync_to_async(room.members.remove)(bob)
    assert await ben.closed_with() == 4404
    await ann.edit("?")
    await ann.until(lambda: ann.acked == 3)  # its step 2, "!" and "?"
    assert await stored(room) == ("plan!?", 3)
    await ann.communicator.disconnect()


async def test_refusals_at_connect_are_the_room_sockets(alice, bob):
    from chatsite.asgi import application
    from tests.conftest import with_host

    await sync_to_async(Room.objects.create)(
        name="Live", slug="live", kind="broadcast", public_viewing=True
    )
    secret = await sync_to_async(Room.objects.create)(name="S", slug="secret", kind="private")
    await sync_to_async(secret.members.add)(alice)
    for user, slug, code in [
        (None, "live", CloseCode.UNAUTHENTICATED),
        (bob, "secret", CloseCode.NOT_FOUND),
        (bob, "nothing-here", CloseCode.NOT_FOUND),
        (bob, "BAD", CloseCode.NOT_FOUND),
    ]:
        client = await notes_open(user, slug, sync=False)
        assert await client.closed_with() == code, (user, slug)
    from channels.testing import WebsocketCommunicator

    foreign = WebsocketCommunicator(
        application, "/ws/rooms/general/notes/", headers=with_host([(b"origin", b"http://evil")])
    )
    connected, _ = await foreign.connect()
    assert not connected


@pytest.mark.parametrize(
    "data",
    [b"garbage bytes", b"\x00\x02\x80", b"\x00\x02\x05ab", "text frame"],
)
async def test_malformed_frames_close_4422_and_store_nothing(alice, general, data):
    ann = await notes_open(alice)
    await ann.edit("kept")
    await ann.pump()
    if isinstance(data, str):
        await ann.communicator.send_to(text_data=data)
    else:
        await ann.send(data)
    assert await ann.closed_with() == CloseCode.MALFORMED
    assert await stored(general) == ("kept", 1)


async def test_an_update_that_does_not_decode_closes_4422(alice, general):
    ann = await notes_open(alice)
    doc = Doc()
    doc.get("notes", type=Text).insert(0, "a good update, cut short")
    await ann.send(step(UPDATE, doc.get_update()[:-4]))
    assert await ann.closed_with() == CloseCode.MALFORMED
    assert await stored(general) == ("", 0)


async def test_an_update_over_the_cap_is_refused_and_not_applied(alice, bob, general, settings):
    settings.CHAT_NOTES_MAX_BYTES = 300
    ann = await notes_open(alice)
    ben = await notes_open(bob)
    await ann.edit("small")
    await ben.until(lambda: str(ben) == "small")
    await ann.edit("x" * 400)
    await ann.until(lambda: ann.denied == [codec.TOO_LARGE])
    assert await stored(general) == ("small", 1)
    # Nobody else got it; the socket stays open and takes what fits.
    await ann.edit("!", index=0)
    await ben.until(lambda: str(ben) == "!small")
    assert (await stored(general))[0] == "!small"
    await ann.communicator.disconnect()
    await ben.communicator.disconnect()


async def test_a_frame_over_the_frame_cap_closes_4009(alice, general, settings):
    settings.CHAT_NOTES_FRAME_MAX_BYTES = 1000
    ann = await notes_open(alice)
    await ann.edit("y" * 2000)
    assert await ann.closed_with() == CloseCode.TOO_BIG
    assert await stored(general) == ("", 0)


async def test_rate_limit_holds_frames_and_loses_none(alice, general, settings):
    settings.CHAT_NOTES_RATE_LIMIT = (2, 1)
    ann = await notes_open(alice, query="acks=1")
    began = time.monotonic()
    for letter in "abcd":
        await ann.edit(letter)
    await ann.until(lambda: ann.acked == 5)
    assert time.monotonic() - began >= 0.9  # two at once, then one each half second
    assert await stored(general) == ("abcd", 4)
    await ann.communicator.disconnect()


async def test_compaction_then_load_gives_the_same_text(alice, bob, general, settings):
    settings.CHAT_NOTES_COMPACT_EVERY = 5
    ann = await notes_open(alice, query="acks=1")
    for number in range(12):
        await ann.edit(f"{number},")
    await ann.until(lambda: ann.acked == 13)
    await ann.pump()
    expected = "".join(f"{number}," for number in range(12))
    document = await sync_to_async(NotesDocument.objects.get)(room=general)
    assert document.last_number == 12
    assert document.snapshot_number >= 10
    text, rows = await stored(general)
    assert text == expected and rows == 12 - document.snapshot_number
    await ann.communicator.disconnect()
    # A fresh copy (no socket left on this worker) loads the snapshot and the rest.
    ben = await notes_open(bob)
    assert str(ben) == expected
    await ben.communicator.disconnect()


async def test_admin_clear_reaches_open_editors_and_old_copies_bring_nothing_back(
    alice, bob, general, make_user
):
    admin = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    ann = await notes_open(alice)
    ben = await notes_open(bob)
    await ann.edit("secret plans")
    await ben.until(lambda: str(ben) == "secret plans")
    old = Doc()
    old.apply_update(ben.doc.get_update())
    await ben.communicator.disconnect()
    await sync_to_async(notes_clear)(room_id=general.pk, user=admin)
    await ann.until(lambda: str(ann) == "")
    assert await stored(general) == ("", 0)
    # Ben comes back with the old text: the clear is in the document he merges with.
    ben = await notes_open(bob, doc=old)
    assert str(ben) == ""
    await ann.pump()
    assert str(ann) == "" and (await stored(general))[0] == ""
    await ann.communicator.disconnect()
    await ben.communicator.disconnect()


async def test_admin_shows_and_clears_the_notes(alice, general, make_user, client):
    admin = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    ann = await notes_open(alice)
    await ann.edit("agenda: <b>item</b>")
    await ann.pump()
    document = await sync_to_async(NotesDocument.objects.get)(room=general)
    await sync_to_async(client.force_login)(admin)
    page = await sync_to_async(client.get)(f"/admin/chat/notesdocument/{document.pk}/change/")
    assert page.status_code == 200
    assert "agenda: &lt;b&gt;item&lt;/b&gt;" in page.content.decode()
    answer = await sync_to_async(client.post)(
        "/admin/chat/notesdocument/",
        {"action": "clear", "_selected_action": [document.pk]},
    )
    assert answer.status_code == 302
    await ann.until(lambda: str(ann) == "")
    assert (await stored(general))[0] == ""
    await ann.communicator.disconnect()


async def test_awareness_reaches_the_others_and_leaves_with_the_socket(alice, bob, general):
    ann = await notes_open(alice)
    ben = await notes_open(bob)
    entry = codec.AwarenessEntry(client_id=77, clock=1, state='{"user":{"name":"ann"}}')
    await ann.send(codec.awareness([entry]))
    await ben.until(lambda: bool(ben.awareness))
    assert codec.message_read(ben.awareness[-1]) == codec.Awareness((entry,))
    cat = await notes_open(bob)  # a newcomer is told who is there
    assert codec.message_read(cat.awareness[0]) == codec.Awareness((entry,))
    await ann.communicator.disconnect()
    await ben.until(lambda: len(ben.awareness) == 2)
    gone = codec.message_read(ben.awareness[-1])
    assert gone == codec.Awareness((codec.AwarenessEntry(client_id=77, clock=2, state="null"),))
    await ben.communicator.disconnect()
    await cat.communicator.disconnect()
