"""The admin: running rooms and moderating messages, with deletions broadcast live."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client

from chat.domain.reactions import reaction_set
from chat.domain.writes import message_create, message_delete
from chat.errors import ChatError
from chat.models import Message, Reaction, Room
from tests.conftest import PASSWORD
from tests.helpers import NO_INLINES, room_admin_form, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )


@pytest.fixture
def admin(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


def cells(content: str, field: str) -> list[str]:
    """The text of every changelist cell of column `field`, in row order."""
    pattern = rf'<t[dh] class="field-{field}[^"]*"[^>]*>(.*?)</t[dh]>'
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(pattern, content, re.S)]


@pytest.fixture
def rooms(alice, bob, general):
    secret = Room.objects.create(
        name="Secret", slug="secret", kind=Room.Kind.PRIVATE, description="the plan"
    )
    secret.members.add(alice, bob)
    attic = Room.objects.create(name="Attic", slug="attic", archived=True)
    for _ in range(3):
        send(general, alice)
    send(secret, bob)
    return {"general": general, "secret": secret, "attic": attic}


def result_slugs(response) -> set[str]:
    assert response.status_code == 200
    return {room.slug for room in response.context["cl"].result_list}


# --- rooms ------------------------------------------------------------------------


def test_room_changelist_shows_kind_archived_and_counts(admin, rooms):
    response = admin.get("/admin/chat/room/")
    assert response.status_code == 200
    content = response.content.decode()
    for header in ("Kind", "Archived", "Members", "Messages"):
        assert f">{header}<" in content
    names = cells(content, "name")
    row = dict(
        zip(
            names,
            zip(
                cells(content, "kind"),
                cells(content, "member_count"),
                cells(content, "message_count"),
                strict=True,
            ),
            strict=True,
        )
    )
    assert row["General"] == ("Public", "0", "3")
    assert row["Secret"] == ("Private", "2", "1")
    assert row["Attic"] == ("Public", "0", "0")
    # Archived is shown as the admin's yes/no icon.
    archived = re.findall(r'<td class="field-archived"><img src="[^"]*icon-(yes|no)', content)
    assert dict(zip(names, archived, strict=True))["Attic"] == "yes"
    assert dict(zip(names, archived, strict=True))["General"] == "no"


def test_room_counts_do_not_multiply_each_other(admin, rooms, make_user):
    # Members x messages joined in one query must still count each once.
    for index in range(3):
        rooms["secret"].members.add(make_user(f"extra{index}"))
    for _ in range(4):
        send(rooms["secret"], rooms["secret"].members.first())
    content = admin.get("/admin/chat/room/?q=secret").content.decode()
    assert cells(content, "member_count") == ["5"]
    assert cells(content, "message_count") == ["5"]


def test_room_search_and_filters(admin, rooms):
    assert result_slugs(admin.get("/admin/chat/room/?q=secret")) == {"secret"}
    assert result_slugs(admin.get("/admin/chat/room/?q=plan")) == {"secret"}  # description
    assert result_slugs(admin.get("/admin/chat/room/?q=zzz")) == set()
    assert result_slugs(admin.get("/admin/chat/room/?kind__exact=private")) == {"secret"}
    assert result_slugs(admin.get("/admin/chat/room/?archived__exact=1")) == {"attic"}
    public_live = result_slugs(admin.get("/admin/chat/room/?kind__exact=public&archived__exact=0"))
    assert "general" in public_live and "attic" not in public_live and "secret" not in public_live


def test_archive_and_unarchive_actions(admin, rooms):
    pks = [rooms["general"].pk, rooms["secret"].pk]
    response = admin.post(
        "/admin/chat/room/", {"action": "archive", "_selected_action": pks}, follow=True
    )
    assert response.status_code == 200
    assert "2 room(s) archived." in response.content.decode()
    assert set(Room.objects.filter(archived=True).values_list("slug", flat=True)) == {
        "general",
        "secret",
        "attic",
    }
    # Archived means read-only for everyone in the room.
    with pytest.raises(ChatError) as refused:
        message_create(
            room_id=rooms["general"].pk,
            author=rooms["secret"].members.first(),
            body="hi",
            client_id=None,
        )
    assert refused.value.code == "room_archived"

    response = admin.post(
        "/admin/chat/room/",
        {"action": "unarchive", "_selected_action": [rooms["general"].pk, rooms["attic"].pk]},
        follow=True,
    )
    assert "2 room(s) unarchived." in response.content.decode()
    assert set(Room.objects.filter(archived=True).values_list("slug", flat=True)) == {"secret"}


def test_members_are_editable_on_the_change_form(admin, rooms, alice, bob, make_user):
    carol = make_user("carol")
    secret = rooms["secret"]
    page = admin.get(f"/admin/chat/room/{secret.pk}/change/")
    assert page.status_code == 200
    assert 'name="memberships-0-role"' in page.content.decode()
    secret.archived = False
    response = admin.post(
        f"/admin/chat/room/{secret.pk}/change/",
        room_admin_form(secret, members={alice: "owner", carol: "member"}),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    secret.refresh_from_db()
    assert set(secret.members.all()) == {alice, carol}
    assert secret.memberships.get(user=alice).role == "owner"
    assert secret.archived is False  # the unchecked box
    # Numbering is not the admin's to change.
    assert secret.last_message_number == 1


def test_room_slug_is_validated_in_the_admin(admin):
    response = admin.post(
        "/admin/chat/room/add/",
        {"name": "Bad", "slug": "Bad Slug!", "description": "", "kind": "public"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["slug"]
    assert not Room.objects.filter(name="Bad").exists()
    response = admin.post(
        "/admin/chat/room/add/",
        {"name": "Good", "slug": "good-1", "description": "", "kind": "public", **NO_INLINES},
    )
    assert response.status_code == 302
    assert Room.objects.get(slug="good-1").last_message_number == 0


# --- messages ---------------------------------------------------------------------------


def message_ids(response) -> set[tuple[str, int]]:
    assert response.status_code == 200
    return {(m.room.slug, m.number) for m in response.context["cl"].result_list}


def test_message_changelist_filters_by_room_and_searches(admin, alice, bob, general):
    lounge = Room.objects.create(name="Lounge", slug="lounge")
    send(general, alice, body="apples and pears")
    send(general, bob, body="bananas")
    send(lounge, bob, body="more apples")
    everything = admin.get("/admin/chat/message/")
    assert message_ids(everything) == {("general", 1), ("general", 2), ("lounge", 1)}
    assert message_ids(admin.get(f"/admin/chat/message/?room__id__exact={lounge.pk}")) == {
        ("lounge", 1)
    }
    assert message_ids(admin.get("/admin/chat/message/?q=apples")) == {
        ("general", 1),
        ("lounge", 1),
    }
    assert message_ids(admin.get("/admin/chat/message/?q=alice")) == {("general", 1)}
    assert message_ids(admin.get(f"/admin/chat/message/?q=bob&room__id__exact={general.pk}")) == {
        ("general", 2)
    }


def test_message_changelist_filters_deleted(admin, alice, general):
    send(general, alice)
    send(general, alice)
    message_delete(room_id=general.pk, number=1, user=alice)
    assert message_ids(admin.get("/admin/chat/message/?deleted=yes")) == {("general", 1)}
    assert message_ids(admin.get("/admin/chat/message/?deleted=no")) == {("general", 2)}


def test_admin_cannot_add_messages(admin, general):
    assert admin.get("/admin/chat/message/add/").status_code == 403
    response = admin.post(
        "/admin/chat/message/add/", {"room": general.pk, "body": "x", "number": 7}
    )
    assert response.status_code == 403
    assert not Message.objects.exists()
    assert "/admin/chat/message/add/" not in admin.get("/admin/chat/message/").content.decode()


def test_admin_pages_need_staff(client, alice, general):
    response = client.get("/admin/chat/message/")
    assert response.status_code == 302
    client.force_login(alice)
    assert client.get("/admin/chat/message/").status_code == 302


def test_admin_delete_in_an_archived_room_keeps_the_number(admin, alice, general):
    send(general, alice)
    message = send(general, alice, body="spam")
    Room.objects.filter(pk=general.pk).update(archived=True)
    response = admin.post(f"/admin/chat/message/{message.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.deleted_at is not None
    assert message.number == 2
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [("   ", "This field is required"), ("x" * 4001, "at most 4000"), ("a\x00b", "Null char")],
)
def test_admin_body_edit_obeys_the_body_rules(admin, alice, general, body, error):
    message = send(general, alice, body="original")
    response = admin.post(f"/admin/chat/message/{message.pk}/change/", {"body": body})
    assert response.status_code == 200
    assert error in response.content.decode()
    message.refresh_from_db()
    assert (message.body, message.edited) == ("original", False)


# --- live broadcasts on the real Redis layer ----------------------------------------------
# database_sync_to_async, not sync_to_async: it closes the worker thread's connection,
# which would otherwise keep the test database from being dropped.


async def listen(room: Room) -> tuple[object, str]:
    """A channel of the real layer in the room's group, as a connected socket has."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(room.group_name, channel)
    return layer, channel


async def next_event(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=3)


async def as_admin(admin: Client, method: str, path: str, data: dict):
    """The admin client's request, from async code (each thread closes its connection)."""
    return await database_sync_to_async(getattr(admin, method))(path, data)


@pytest.mark.django_db(transaction=True)
async def test_admin_delete_soft_deletes_and_broadcasts(admin, alice, general):
    await database_sync_to_async(send)(general, alice, body="one")
    spam = await database_sync_to_async(send)(general, alice, body="spam")
    layer, channel = await listen(general)

    response = await as_admin(
        admin, "post", f"/admin/chat/message/{spam.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302

    event = await next_event(layer, channel)
    assert event["type"] == "chat.message_deleted"
    assert json.loads(event["text"]) == {"type": "message.deleted", "id": 2}

    stored = await database_sync_to_async(Message.objects.get)(pk=spam.pk)
    assert stored.deleted_at is not None
    assert stored.number == 2
    assert stored.body == "spam"  # kept for the record; history leaves it out
    # The next message still gets the next number.
    assert (await database_sync_to_async(send)(general, alice)).number == 3


@pytest.mark.django_db(transaction=True)
async def test_admin_bulk_delete_soft_deletes_each_and_broadcasts_each(admin, alice, general):
    messages = [await database_sync_to_async(send)(general, alice, body=f"m{i}") for i in range(3)]
    layer, channel = await listen(general)

    response = await as_admin(
        admin,
        "post",
        "/admin/chat/message/",
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in messages[:2]],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    received = [json.loads((await next_event(layer, channel))["text"]) for _ in range(2)]
    assert sorted(frame["id"] for frame in received) == [1, 2]
    assert {frame["type"] for frame in received} == {"message.deleted"}

    numbers = await database_sync_to_async(
        lambda: list(
            Message.objects.filter(room=general)
            .order_by("number")
            .values_list("number", "deleted_at")
        )
    )()
    assert [number for number, _ in numbers] == [1, 2, 3]
    assert [deleted is not None for _, deleted in numbers] == [True, True, False]


@pytest.mark.django_db(transaction=True)
async def test_admin_body_edit_marks_edited_and_broadcasts(admin, alice, general):
    message = await database_sync_to_async(send)(general, alice, body="rude words")
    layer, channel = await listen(general)

    response = await as_admin(
        admin,
        "post",
        f"/admin/chat/message/{message.pk}/change/",
        {"body": "[removed by a moderator]"},
    )
    assert response.status_code == 302

    event = await next_event(layer, channel)
    assert event["type"] == "chat.message_edited"
    assert json.loads(event["text"]) == {
        "type": "message.edited",
        "id": 1,
        "body": "[removed by a moderator]",
        "mentions": [],
    }
    stored = await database_sync_to_async(Message.objects.get)(pk=message.pk)
    assert stored.body == "[removed by a moderator]"
    # What live pages showed as edited is edited in history too.
    assert stored.edited is True


@pytest.mark.django_db(transaction=True)
async def test_admin_takes_a_reaction_away_live(admin, alice, bob, general):
    await database_sync_to_async(send)(general, alice, body="look")
    for user, emoji in ((bob, "👍"), (alice, "🎉")):
        await database_sync_to_async(reaction_set)(
            room_id=general.pk, number=1, user=user, emoji=emoji, present=True
        )
    reaction = await database_sync_to_async(Reaction.objects.get)(emoji="👍")
    layer, channel = await listen(general)

    response = await as_admin(
        admin, "post", f"/admin/chat/reaction/{reaction.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    event = await next_event(layer, channel)
    assert event["type"] == "chat.reactions"
    assert json.loads(event["text"]) == {
        "type": "message.reactions",
        "id": 1,
        "reactions": [{"emoji": "🎉", "count": 1, "users": ["alice"]}],
        "version": 3,
    }
    assert await database_sync_to_async(Reaction.objects.count)() == 1


# --- people and their files ---------------------------------------------------------


def test_the_user_list_shows_what_each_persons_files_take_of_the_quota(
    admin, alice, bob, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chat.files.attachments import attachment_create

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHAT_UPLOAD_QUOTA_BYTES = 10 * 1024
    for name, data in [("a.txt", b"a" * 1024), ("b.txt", b"b" * 512)]:
        attachment_create(uploader=bob, file=SimpleUploadedFile(name, data), name=name)
    page = admin.get("/admin/auth/user/")
    content = page.content.decode()
    # One row each (two files do not make two rows), in the default order of names.
    assert cells(content, "username") == ["alice", "bob", "root"]
    assert cells(content, "files_stored") == [
        "0 bytes of 10 KiB",
        "1.5 KiB of 10 KiB",
        "0 bytes of 10 KiB",
    ]
    # Sorted by it, most first (the column's index in list_display, from 1).
    by_files = admin.get("/admin/auth/user/?o=-6.1").content.decode()
    assert cells(by_files, "username")[0] == "bob"
    # Each opens the person's files.
    files = f"/admin/chat/attachment/?uploader__id__exact={bob.pk}"
    assert f'href="{files}"' in content
    listed = admin.get(files)
    assert {attachment.name for attachment in listed.context["cl"].result_list} == {
        "a.txt",
        "b.txt",
    }
