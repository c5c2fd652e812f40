"""Serving files to their readers only (docs/files.md): who may fetch a file, and how it
is served: inline or as a download, through nginx or from S3.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from PIL import Image

from chat.domain.direct import direct_room_open
from chat.domain.writes import message_delete
from chat.models import Room
from chat.web.tokens import token_issue
from tests.attachments_helpers import PNG_SIGNATURE, attached, content, create, fetch, image_bytes
from tests.attachments_helpers import media as media  # a fixture
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


def test_an_upload_not_yet_attached_is_its_uploaders_alone(alice, bob):
    photo = create(alice, image_bytes(), "p.png")
    assert fetch(logged_in(alice), photo).status_code == 200
    assert fetch(logged_in(alice), photo, thumbnail=True).status_code == 200
    assert fetch(logged_in(bob), photo).status_code == 404
    assert fetch(Client(), photo).status_code == 404


def test_a_public_rooms_files_are_for_everyone_signed_in(alice, bob, general):
    data = image_bytes("PNG", (50, 50))
    photo = attached(general, alice, data, "p.png")
    response = fetch(logged_in(bob), photo)
    assert response.status_code == 200 and content(response) == data
    assert fetch(Client(), photo).status_code == 404  # not signed in: no such file


def test_a_private_rooms_files_are_for_its_members_alone(alice, bob, make_user):
    carol = make_user("carol")
    private = Room.objects.create(name="Ours", slug="ours", kind=Room.Kind.PRIVATE)
    private.members.add(alice, bob)
    notes = attached(private, alice, b"secret plans\n", "plans.txt")
    assert fetch(logged_in(bob), notes).status_code == 200
    assert fetch(logged_in(carol), notes).status_code == 404
    # As for an id that names nothing: the same answer, the same page.
    nothing = logged_in(carol).get(f"/files/{notes.pk + 1000}/plans.txt")
    assert nothing.status_code == 404
    # Removed from the room: no longer.
    private.members.remove(bob)
    assert fetch(logged_in(bob), notes).status_code == 404


def test_a_direct_conversations_files_are_for_its_two_people(alice, bob, make_user):
    carol = make_user("carol")
    direct = direct_room_open(user=alice, username="bob")
    photo = attached(direct, bob, image_bytes(), "us.png")
    for reader, status in ((alice, 200), (bob, 200), (carol, 404)):
        assert fetch(logged_in(reader), photo).status_code == status, reader
        assert fetch(logged_in(reader), photo, thumbnail=True).status_code == status, reader


def test_a_deleted_messages_files_are_served_to_no_one(alice, bob, general, admin_user):
    photo = attached(general, alice, image_bytes(), "p.png")
    message_delete(room_id=general.pk, number=photo.message.number, user=alice)
    assert fetch(logged_in(alice), photo).status_code == 404
    assert fetch(logged_in(bob), photo).status_code == 404
    # Moderators still may, to judge what was deleted.
    assert fetch(logged_in(admin_user), photo).status_code == 200


def test_moderators_open_any_file_and_other_staff_do_not(alice, make_user, admin_user):
    private = Room.objects.create(name="Ours", slug="ours", kind=Room.Kind.PRIVATE)
    private.members.add(alice)
    notes = attached(private, alice, b"notes", "n.txt")
    assert fetch(logged_in(admin_user), notes).status_code == 200
    staff = make_user("staff", is_staff=True)
    assert fetch(logged_in(staff), notes).status_code == 404


def test_a_broadcast_rooms_files_reach_its_viewers_who_are_not_signed_in(alice, make_user):
    stage = Room.objects.create(
        name="Stage", slug="stage", kind=Room.Kind.BROADCAST, public_viewing=True
    )
    staff = make_user("host", is_staff=True)
    photo = attached(stage, staff, image_bytes(), "goal.png")
    assert fetch(Client(), photo).status_code == 200
    Room.objects.filter(pk=stage.pk).update(public_viewing=False)
    assert fetch(Client(), photo).status_code == 404
    assert fetch(logged_in(alice), photo).status_code == 200


def test_a_bearer_token_reads_files_as_its_user(alice, bob):
    photo = create(alice, image_bytes())
    mine = fetch(Client(), photo, HTTP_AUTHORIZATION=f"Bearer {token_issue(user=alice)}")
    theirs = fetch(Client(), photo, HTTP_AUTHORIZATION=f"Bearer {token_issue(user=bob)}")
    forged = fetch(Client(), photo, HTTP_AUTHORIZATION="Bearer not-a-token")
    assert (mine.status_code, theirs.status_code, forged.status_code) == (200, 404, 404)


def test_a_deactivated_uploader_reads_nothing(alice):
    photo = create(alice, image_bytes())
    token = token_issue(user=alice)
    alice.is_active = False
    alice.save()
    assert fetch(Client(), photo, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404


@pytest.mark.parametrize("path", ["/files/0/x", "/files/99999999999999999999999/x", "/files/1/"])
def test_ids_that_name_nothing_are_404(alice, path):
    assert logged_in(alice).get(path).status_code == 404


# --- how a file is served ----------------------------------------------------------------


def test_an_image_is_shown_inline_and_nothing_is_sniffed(alice, general):
    data = image_bytes("PNG", (10, 10))
    photo = attached(general, alice, data, "dot.png")
    response = fetch(logged_in(alice), photo)
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="dot.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Cache-Control"].startswith("private")
    assert content(response) == data
    thumbnail = fetch(logged_in(alice), photo, thumbnail=True)
    assert thumbnail["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(content(thumbnail))) as image:
        assert image.format == "WEBP"


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (PNG_SIGNATURE + b"\x00not an image" * 20, "cat.png", "application/octet-stream"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "logo.svg",
            "text/plain; charset=utf-8",
        ),
        (b"<html><script>alert(1)</script></html>", "page.html", "text/plain; charset=utf-8"),
        (b"%PDF-1.4 ...", "report.pdf", "application/pdf"),
    ],
)
def test_everything_but_a_decoded_image_is_a_download(alice, general, data, name, content_type):
    attachment = attached(general, alice, data, name)
    assert attachment.image is False and not attachment.thumbnail
    response = fetch(logged_in(alice), attachment)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert content(response) == data
    assert fetch(logged_in(alice), attachment, thumbnail=True).status_code == 404


def test_a_name_that_is_not_ascii_is_downloaded_as_it_is(alice, general):
    attachment = attached(general, alice, b"x", "Ünïcode résumé.txt")
    response = fetch(logged_in(alice), attachment)
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''%C3%9Cn%C3%AFcode%20r%C3%A9sum%C3%A9.txt"
    )
    assert response.status_code == 200


def test_behind_nginx_the_bytes_are_handed_over_with_x_accel_redirect(alice, general, settings):
    settings.CHAT_FILES_ACCEL_REDIRECT = "/protected-media/"
    photo = attached(general, alice, image_bytes(), "p.png")
    response = fetch(logged_in(alice), photo)
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{photo.file.name}"
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="p.png"'
    assert content(response) == b""
    thumbnail = fetch(logged_in(alice), photo, thumbnail=True)
    assert thumbnail["X-Accel-Redirect"] == f"/protected-media/{photo.thumbnail.name}"
    # The check comes first: a reader who may not gets no hand-over.
    private = Room.objects.create(name="Ours", slug="ours", kind=Room.Kind.PRIVATE)
    private.members.add(alice)
    hidden = attached(private, alice, b"x", "x.txt")
    refused = fetch(Client(), hidden)
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused


def test_from_s3_a_reader_is_redirected_to_a_signed_url_that_expires(alice, general, settings):
    photo = attached(general, alice, image_bytes(), "p.png")
    settings.CHAT_S3_BUCKET = "chat-files"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "chat-files",
                "endpoint_url": "http://127.0.0.1:9",
                "region_name": "us-east-1",
                "access_key": "test-key",
                "secret_key": "test-secret",
                "addressing_style": "path",
                "querystring_expire": 60,
                "signature_version": "s3v4",
                "default_acl": None,
            },
        },
    }
    response = fetch(logged_in(alice), photo)
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    url = urlsplit(response["Location"])
    assert (url.scheme, url.netloc, url.path) == (
        "http",
        "127.0.0.1:9",
        f"/chat-files/{photo.file.name}",
    )
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["60"] and query["X-Amz-Signature"]
    assert query["response-content-type"] == ["image/png"]
    assert query["response-content-disposition"] == ['inline; filename="p.png"']
    # No signed URL for whoever may not read it.
    assert fetch(Client(), photo).status_code == 404
