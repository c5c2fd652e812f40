"""Files going away (docs/files.md): the cleanup of uploads never attached, a room's
files deleted with it, and attachments in the admin.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from chat.domain.writes import message_create
from chat.files.attachments import attachments_unattached_delete
from chat.models import Attachment, Room
from tests.attachments_helpers import attached, create, image_bytes, stored_files
from tests.attachments_helpers import media as media  # a fixture
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


# --- uploads never attached --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cleanup_deletes_old_uploads_never_attached_and_their_files(alice, general, media):
    old = create(alice, image_bytes(), "old.png")
    old_but_sent = create(alice, image_bytes(), "sent.png")
    message_create(
        room_id=general.pk, author=alice, body="", client_id=None, attachments=[old_but_sent.pk]
    )
    recent = create(alice, b"recent", "recent.txt")
    a_day_ago = timezone.now() - timedelta(days=1, minutes=1)
    Attachment.objects.filter(pk__in=[old.pk, old_but_sent.pk]).update(created=a_day_ago)
    old_files = [old.file.name, old.thumbnail.name]
    assert all(name in stored_files(media) for name in old_files)

    out = io.StringIO()
    call_command("chat_uploads_cleanup", stdout=out)
    assert "deleted 1 upload(s)" in out.getvalue()
    assert set(Attachment.objects.values_list("pk", flat=True)) == {old_but_sent.pk, recent.pk}
    files = stored_files(media)
    assert not any(name in files for name in old_files)
    assert old_but_sent.file.name in files and recent.file.name in files
    # Nothing more to do the next time.
    assert attachments_unattached_delete(older_than=timedelta(days=1)) == 0


@pytest.mark.django_db(transaction=True)
def test_the_cleanup_goes_through_every_batch(alice, media):
    uploads = [create(alice, f"{index}".encode(), f"{index}.txt") for index in range(7)]
    Attachment.objects.update(created=timezone.now() - timedelta(days=2))
    assert attachments_unattached_delete(older_than=timedelta(days=1), batch=3) == 7
    assert not Attachment.objects.exists()
    assert stored_files(media) == []
    assert len(uploads) == 7


@pytest.mark.django_db(transaction=True)
def test_deleting_a_room_deletes_its_files(alice, media):
    room = Room.objects.create(name="Gone", slug="gone")
    photo = attached(room, alice, image_bytes(), "p.png")
    assert photo.file.name in stored_files(media)
    room.delete()
    assert stored_files(media) == []


def test_the_cleanup_setting_is_a_day_by_default(settings):
    from chatsite import settings as site_settings

    assert site_settings.CHAT_UPLOAD_KEEP_SECONDS == 86400
    assert site_settings.CHAT_UPLOAD_MAX_BYTES == 10 * 1024 * 1024
    assert site_settings.CHAT_UPLOAD_QUOTA_BYTES == 1024 * 1024 * 1024


# --- the admin ---------------------------------------------------------------------------


def test_the_admin_lists_attachments_with_their_messages(admin_user, alice, general):
    photo = attached(general, alice, image_bytes(), "holiday.png")
    loose = create(alice, b"loose", "loose.txt")
    client = logged_in(admin_user)
    page = client.get("/admin/chat/attachment/").content.decode()
    assert "holiday.png" in page and "loose.txt" in page
    message_url = f"/admin/chat/message/{photo.message_id}/change/"
    assert f'href="{message_url}"' in page
    assert "general#1" in page
    unattached = client.get("/admin/chat/attachment/?attached=no").content.decode()
    assert "loose.txt" in unattached and "holiday.png" not in unattached
    # The message's page lists its files, each opening it.
    message_page = client.get(message_url).content.decode()
    assert f'href="/files/{photo.pk}/holiday.png"' in message_page
    assert loose.name not in message_page


def test_deleting_an_attachment_in_the_admin_deletes_its_bytes(
    admin_user, alice, media, django_capture_on_commit_callbacks
):
    loose = create(alice, image_bytes(), "loose.png")
    kept = create(alice, b"kept", "kept.txt")
    assert len(stored_files(media)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(admin_user).post(
            f"/admin/chat/attachment/{loose.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert list(Attachment.objects.all()) == [kept]
    assert stored_files(media) == [kept.file.name]
