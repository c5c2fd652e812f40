"""Storing an upload (docs/files.md): the attachment and its thumbnail, and
POST /api/uploads/ with its answers, its limit, its rate and who may post.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from chat.domain import payloads
from chat.errors import ChatError
from chat.files.attachments import attachment_create
from chat.files.images import THUMBNAIL_BOX
from chat.models import Attachment
from chat.web.tokens import token_issue
from tests.attachments_helpers import (
    PNG_SIGNATURE,
    create,
    image_bytes,
    post_file,
    stored_files,
    upload,
)
from tests.attachments_helpers import media as media  # a fixture
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


# --- storing an upload -------------------------------------------------------------------


def test_an_image_is_stored_with_its_thumbnail_and_sniffed_type(alice, media):
    data = image_bytes("PNG", (640, 480))
    attachment = attachment_create(
        uploader=alice,
        file=upload(data, "holiday.jpg", content_type="image/jpeg"),
        name="../holiday.jpg",
    )
    assert attachment.message is None and attachment.uploader == alice
    # The bytes say PNG, whatever the name and the client's type say.
    assert (attachment.content_type, attachment.image) == ("image/png", True)
    assert (attachment.width, attachment.height, attachment.size) == (640, 480, len(data))
    assert attachment.name == "holiday.jpg"
    assert (media / attachment.file.name).read_bytes() == data
    assert attachment.thumbnail.name.startswith("thumbnails/")
    with Image.open(media / attachment.thumbnail.name) as thumbnail:
        assert thumbnail.format == "WEBP" and max(thumbnail.size) <= max(THUMBNAIL_BOX)
    # The key is random: never the user's name for the file.
    assert "holiday" not in attachment.file.name


def test_a_fake_image_is_stored_as_a_plain_file_whole(alice, media):
    data = PNG_SIGNATURE + b"this is not an image" * 50
    attachment = create(alice, data, "cat.png")
    assert (attachment.content_type, attachment.image) == ("application/octet-stream", False)
    assert (attachment.width, attachment.height, attachment.thumbnail.name) == (None, None, "")
    # Nothing is lost: the bytes are kept as they came.
    assert (media / attachment.file.name).read_bytes() == data
    assert stored_files(media) == [attachment.file.name]


def test_a_file_over_the_limit_is_refused_and_nothing_is_stored(alice, media, settings):
    settings.CHAT_UPLOAD_MAX_BYTES = 100
    with pytest.raises(ChatError) as refused:
        create(alice, b"x" * 101)
    assert (refused.value.code, refused.value.limit) == ("too_large", 100)
    assert stored_files(media) == [] and not Attachment.objects.exists()
    assert create(alice, b"x" * 100).size == 100


def test_an_empty_file_is_a_file(alice, media):
    attachment = create(alice, b"", "empty.txt")
    assert (attachment.size, attachment.content_type, attachment.image) == (
        0,
        "application/octet-stream",
        False,
    )


def test_when_the_row_cannot_be_stored_the_bytes_go_too(alice, media, monkeypatch):
    def refuse(**fields):
        raise RuntimeError("the database refused")

    monkeypatch.setattr(Attachment.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        create(alice, image_bytes(), "a.png")
    assert stored_files(media) == []


@pytest.mark.redis
def test_upload_answers_201_with_the_attachment_object(alice):
    data = image_bytes("PNG", (30, 20))
    response = post_file(logged_in(alice), data, "dir/photo.png")
    assert response.status_code == 201
    body = response.json()
    attachment = Attachment.objects.get()
    assert body == {
        "id": attachment.pk,
        "name": "photo.png",
        "size": len(data),
        "content_type": "image/png",
        "image": True,
        "width": 30,
        "height": 20,
        "url": f"/files/{attachment.pk}/photo.png",
        "thumbnail_url": f"/files/{attachment.pk}/thumbnail/",
    }
    assert body == payloads.attachment_payload(attachment)


def test_upload_over_the_limit_is_413_with_the_limit(alice, settings, media):
    settings.CHAT_UPLOAD_MAX_BYTES = 1000
    response = post_file(logged_in(alice), b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "detail": "a file has at most 1000 bytes (1000 bytes)",
        "limit": 1000,
    }
    assert not Attachment.objects.exists() and stored_files(media) == []


def test_upload_is_refused_by_its_content_length_before_it_is_read(alice, settings, rf):
    from chat.web.views.api import api_uploads

    settings.CHAT_UPLOAD_MAX_BYTES = 1000
    request = rf.post("/api/uploads/", data=b"", content_type="multipart/form-data; boundary=x")
    request.META["CONTENT_LENGTH"] = str(1000 + settings.CHAT_UPLOAD_OVERHEAD_BYTES + 1)
    request.META["HTTP_AUTHORIZATION"] = f"Bearer {token_issue(user=alice)}"

    def unread(*args):
        raise AssertionError("the body was read")

    request.read = unread  # type: ignore[method-assign]
    request._stream = None  # nothing to read: a read would fail
    response = api_uploads(request)
    assert response.status_code == 413
    assert json.loads(response.content)["limit"] == 1000


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({}, 400, "bad_request"),
        ({"other": SimpleUploadedFile("a.txt", b"x")}, 400, "bad_request"),
    ],
)
def test_upload_without_a_file_is_400(alice, data, status, code):
    response = logged_in(alice).post("/api/uploads/", data)
    assert response.status_code == status
    assert response.json()["error"] == code


@pytest.mark.redis
def test_upload_needs_a_user_and_csrf_or_a_token(alice):
    anonymous = post_file(Client(), image_bytes())
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthenticated")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert post_file(strict, image_bytes()).status_code == 403
    token = token_issue(user=alice)
    by_token = post_file(
        Client(enforce_csrf_checks=True), image_bytes(), HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert by_token.status_code == 201
    assert Attachment.objects.get().uploader == alice


@pytest.mark.redis
def test_uploads_are_rate_limited_per_user(alice, bob, settings):
    settings.CHAT_UPLOAD_RATE_LIMIT = (2, 60)
    client = logged_in(alice)
    assert [post_file(client, image_bytes()).status_code for _ in range(2)] == [201, 201]
    refused = post_file(client, image_bytes())
    assert (refused.status_code, refused.json()["error"]) == (429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert post_file(logged_in(bob), image_bytes()).status_code == 201
    assert Attachment.objects.count() == 3


def test_upload_is_post_only(alice):
    assert logged_in(alice).get("/api/uploads/").status_code == 405
