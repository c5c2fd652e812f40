"""Attaching files to a message (docs/files.md): which uploads a message may name, once,
by the same rules over the socket, the page and the API.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import protocol
from chat.domain import events, payloads
from chat.domain.writes import message_create, message_edit
from chat.errors import ChatError
from chat.models import Attachment, Message, Room
from tests.attachments_helpers import attached, create, image_bytes, post_file
from tests.attachments_helpers import media as media  # a fixture
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db


# --- attaching to a message --------------------------------------------------------------


def test_a_message_names_its_uploads_and_carries_them(alice, general):
    photo = create(alice, image_bytes(), "photo.png")
    notes = create(alice, b"some notes\n", "notes.txt")
    message, created = message_create(
        room_id=general.pk,
        author=alice,
        body="look",
        client_id="c1",
        attachments=[notes.pk, photo.pk],
    )
    assert created
    assert set(Attachment.objects.filter(message=message).values_list("pk", flat=True)) == {
        photo.pk,
        notes.pk,
    }
    payload = payloads.message_payload(message, for_author=True)
    # In upload order, each as POST /api/uploads/ answered.
    assert payload["attachments"] == [
        payloads.attachment_payload(Attachment.objects.get(pk=photo.pk)),
        payloads.attachment_payload(Attachment.objects.get(pk=notes.pk)),
    ]
    stored = Message.objects.for_wire().get(pk=message.pk)
    assert payloads.message_payload(stored, for_author=True) == payload
    # The broadcast event is JSON primitives only (as channels-redis needs).
    event = events.chat_message(message)
    assert json.loads(json.dumps(event)) == event
    assert json.loads(event["text"])["attachments"] == payload["attachments"]


def test_a_message_without_attachments_says_so(alice, general):
    message = send(general, alice, "plain")
    assert payloads.message_payload(message, for_author=False)["attachments"] == []


def test_a_message_of_files_alone_may_have_no_body(alice, general):
    photo = create(alice, image_bytes(), "photo.png")
    message, _ = message_create(
        room_id=general.pk, author=alice, body="  ", client_id=None, attachments=[photo.pk]
    )
    assert message.body == ""
    # What notifications say of it: its files.
    assert events.chat_message(message)["snippet"] == "📎 photo.png"
    with pytest.raises(ChatError) as refused:
        message_create(room_id=general.pk, author=alice, body="", client_id=None)
    assert refused.value.code == "empty"
    # It may be edited to text, and back to none; a message without files may not.
    message_edit(room_id=general.pk, number=message.number, user=alice, body="now with words")
    message_edit(room_id=general.pk, number=message.number, user=alice, body="")
    plain = send(general, alice, "words")
    with pytest.raises(ChatError) as refused:
        message_edit(room_id=general.pk, number=plain.number, user=alice, body=" ")
    assert refused.value.code == "empty"


def refusal(**fields) -> str:
    with pytest.raises(ChatError) as refused:
        message_create(**fields)
    return refused.value.code


def test_another_users_upload_is_refused_and_nothing_is_stored(alice, bob, general):
    bobs = create(bob, image_bytes(), "bobs.png")
    send(general, alice, "before")
    code = refusal(
        room_id=general.pk, author=alice, body="mine now", client_id="c", attachments=[bobs.pk]
    )
    assert code == "bad_attachment"
    general.refresh_from_db()
    # No message, no number taken, the upload still bob's and free.
    assert general.last_message_number == Message.objects.filter(room=general).count() == 1
    bobs.refresh_from_db()
    assert bobs.message is None
    # Mixed with one of her own: refused whole, her own left free too.
    hers = create(alice, b"hers", "hers.txt")
    code = refusal(
        room_id=general.pk, author=alice, body="x", client_id=None, attachments=[hers.pk, bobs.pk]
    )
    assert code == "bad_attachment"
    hers.refresh_from_db()
    assert hers.message is None


def test_an_upload_is_attached_once(alice, general, make_user):
    photo = create(alice, image_bytes())
    first, _ = message_create(
        room_id=general.pk, author=alice, body="one", client_id=None, attachments=[photo.pk]
    )
    other_room = Room.objects.create(name="Other", slug="other")
    code = refusal(
        room_id=other_room.pk, author=alice, body="two", client_id=None, attachments=[photo.pk]
    )
    assert code == "bad_attachment"
    assert list(Attachment.objects.filter(message=first)) == [photo]


@pytest.mark.parametrize("ids", [[999_999], [2**63], [2**80], [0], [-1]])
def test_ids_that_name_no_upload_are_refused(alice, general, ids):
    assert (
        refusal(room_id=general.pk, author=alice, body="x", client_id=None, attachments=ids)
        == "bad_attachment"
    )
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "attachments", ["1", 1, {"id": 1}, [1.0], [True], ["1"], [None], list(range(1, 12))]
)
def test_attachments_that_are_not_a_short_list_of_ids_are_a_bad_request(
    alice, general, attachments
):
    assert (
        refusal(room_id=general.pk, author=alice, body="x", client_id=None, attachments=attachments)
        == "bad_request"
    )


def test_a_repeated_id_counts_once_and_ten_files_are_allowed(alice, general):
    uploads = [create(alice, f"file {index}".encode(), f"{index}.txt") for index in range(10)]
    ids = [upload.pk for upload in uploads]
    message, _ = message_create(
        room_id=general.pk, author=alice, body="ten", client_id=None, attachments=ids + ids[:3]
    )
    assert Attachment.objects.filter(message=message).count() == 10


def test_a_resend_with_the_same_client_id_is_idempotent(alice, general):
    photo = create(alice, image_bytes())
    first, created = message_create(
        room_id=general.pk, author=alice, body="hi", client_id="same", attachments=[photo.pk]
    )
    again, created_again = message_create(
        room_id=general.pk, author=alice, body="hi", client_id="same", attachments=[photo.pk]
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)
    shown = payloads.message_payload(again, for_author=True)["attachments"]
    assert [item["id"] for item in shown] == [photo.pk]
    assert Message.objects.count() == 1


def test_pages_read_attachments_in_one_query_however_many(alice, general):
    def add(count: int) -> None:
        for index in range(count):
            uploads = [create(alice, image_bytes(), "p.png"), create(alice, b"t", "t.txt")]
            message_create(
                room_id=general.pk,
                author=alice,
                body=f"m{index}",
                client_id=None,
                attachments=[upload.pk for upload in uploads],
            )

    def render() -> list[dict[str, Any]]:
        messages, _ = Message.objects.page(room_id=general.pk, limit=50)
        return [payloads.message_payload(message, for_author=True) for message in messages]

    add(2)
    with CaptureQueriesContext(connection) as few:
        assert len(render()) == 2
    add(10)
    with CaptureQueriesContext(connection) as many:
        rendered = render()
    assert len(rendered) == 12 and all(len(item["attachments"]) == 2 for item in rendered)
    assert len(many) == len(few)


@pytest.mark.redis
def test_the_api_publishes_with_attachments_by_the_same_rules(alice, bob, general):
    client = logged_in(alice)
    photo = post_file(client, image_bytes()).json()
    bobs = create(bob, image_bytes())
    refused = client.post(
        "/api/rooms/general/messages/",
        json.dumps({"body": "", "attachments": [bobs.pk]}),
        content_type="application/json",
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_attachment")
    response = client.post(
        "/api/rooms/general/messages/",
        json.dumps({"body": "", "attachments": [photo["id"]]}),
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["attachments"] == [photo]


# --- the socket frame's field ------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "message.send", "body": "x"}, ()),
        ({"type": "message.send", "body": "x", "attachments": None}, ()),
        ({"type": "message.send", "body": "x", "attachments": [3, 1]}, (3, 1)),
        ({"type": "message.send", "attachments": [3]}, (3,)),
    ],
)
def test_message_send_parses_its_attachments(frame, expected):
    command = protocol.command(frame)
    assert isinstance(command, protocol.SendMessage)
    assert command.attachments == expected


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message.send", "body": "x", "attachments": "1"},
        {"type": "message.send", "body": "x", "attachments": {"1": 1}},
        {"type": "message.send", "body": "x", "attachments": [0]},
        {"type": "message.send", "body": "x", "attachments": [1.5]},
        {"type": "message.send", "body": "x", "attachments": [True]},
        {"type": "message.send", "attachments": []},  # no body, and no files
        {"type": "message.send"},
    ],
)
def test_message_send_refuses_attachments_of_the_wrong_shape(frame):
    with pytest.raises(ChatError) as refused:
        protocol.command(frame)
    assert refused.value.code == "bad_request"


# --- the socket --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frames_without_presence")
@pytest.mark.redis
async def test_a_socket_sends_files_and_the_room_sees_them(connect, alice, bob, general):
    photo = await database_sync_to_async(create)(alice, image_bytes(), "photo.png")
    bobs = await database_sync_to_async(create)(bob, image_bytes(), "bobs.png")
    a, _ = await connect(alice)
    b, _ = await connect(bob)
    await a.send({"type": "message.send", "body": "", "client_id": "f1", "attachments": [photo.pk]})
    mine = await a.receive_type("message")
    theirs = await b.receive_type("message")
    assert mine["client_id"] == "f1" and theirs["client_id"] is None
    assert mine["attachments"] == theirs["attachments"]
    [shown] = theirs["attachments"]
    assert (shown["id"], shown["name"], shown["image"]) == (photo.pk, "photo.png", True)
    # Another user's upload: refused on that socket alone, nothing stored or broadcast.
    await a.send({"type": "message.send", "body": "x", "client_id": "f2", "attachments": [bobs.pk]})
    error = await a.receive_type("error")
    assert (error["code"], error["client_id"]) == ("bad_attachment", "f2")
    assert await b.nothing()
    # A resend of the stored one: acknowledged again, with its files, and nothing new.
    await a.send({"type": "message.send", "body": "", "client_id": "f1", "attachments": [photo.pk]})
    again = await a.receive_type("message")
    assert (again["id"], again["attachments"]) == (mine["id"], mine["attachments"])
    assert await b.nothing()
    assert await database_sync_to_async(Message.objects.count)() == 1


def test_the_room_page_carries_the_upload_limits_and_renders_files_without_javascript(
    alice, general, settings
):
    photo = attached(general, alice, image_bytes(), "p.png")
    page = logged_in(alice).get("/rooms/general/").content.decode()
    assert f'data-upload-max="{settings.CHAT_UPLOAD_MAX_BYTES}"' in page
    assert 'data-attachments-max="10"' in page
    assert f'href="/files/{photo.pk}/p.png"' in page
    assert 'id="attach-input"' in page and 'id="upload-tray"' in page
