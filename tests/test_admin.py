"""The admin: running rooms (lists, counts, archiving, members) and the people's list
with what their files take of the quota. Moderating messages is in
test_admin_messages.py.
"""

from __future__ import annotations

import re

import pytest

from chat.domain.writes import message_create
from chat.errors import ChatError
from chat.models import Room
from tests.admin_helpers import admin as admin  # a fixture
from tests.admin_helpers import root as root  # a fixture
from tests.helpers import NO_INLINES, room_admin_form, send

pytestmark = pytest.mark.django_db


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
