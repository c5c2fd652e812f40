"""How much one may upload (docs/files.md): each person's quota (CHAT_UPLOAD_QUOTA_BYTES),
two uploads racing for it, and the size limit at the ASGI edge before Django reads a body.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.db import connection

from chat.domain.writes import message_delete
from chat.errors import ChatError
from chat.models import Attachment
from chat.web.tokens import token_issue
from tests.attachments_helpers import (
    attached,
    create,
    image_bytes,
    multipart,
    post_file,
    stored_files,
)
from tests.attachments_helpers import media as media  # a fixture
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


# --- the quota of each person's files (CHAT_UPLOAD_QUOTA_BYTES) ------------------------


@pytest.mark.redis
def test_an_upload_over_the_quota_is_413_with_the_quota_and_what_is_used(alice, media, settings):
    settings.CHAT_UPLOAD_QUOTA_BYTES = 1000
    client = logged_in(alice)
    assert post_file(client, b"a" * 600, "a.txt").status_code == 201
    refused = post_file(client, b"b" * 401, "b.txt")
    assert refused.status_code == 413
    assert refused.json() == {
        "error": "over_quota",
        "detail": "your files take 600 bytes of the 1000 bytes each person may keep:"
        " this one (401 bytes) does not fit",
        "quota": 1000,
        "used": 600,
    }
    assert Attachment.objects.count() == 1 and len(stored_files(media)) == 1
    # Exactly the quota fits.
    assert post_file(client, b"c" * 400, "c.txt").status_code == 201
    assert Attachment.objects.filter(uploader=alice).stored_bytes() == 1000


def test_the_quota_is_each_persons_own_and_counts_every_file_until_it_is_deleted(
    alice, bob, general, settings
):
    settings.CHAT_UPLOAD_QUOTA_BYTES = 1000
    sent = attached(general, alice, b"a" * 500, "sent.txt")
    loose = create(alice, b"b" * 500, "loose.txt")
    message_delete(room_id=general.pk, number=sent.message.number, user=alice)
    # Files of a deleted message and uploads never sent are still stored: they count.
    with pytest.raises(ChatError) as refused:
        create(alice, b"c", "c.txt")
    assert (refused.value.code, refused.value.quota, refused.value.used) == (
        "over_quota",
        1000,
        1000,
    )
    assert create(bob, b"d" * 1000, "d.txt").size == 1000
    loose.delete()
    assert create(alice, b"e" * 500, "e.txt").size == 500


def test_a_thumbnail_counts_in_its_uploaders_quota(alice, media, settings):
    photo = create(alice, image_bytes("PNG", (640, 480)), "photo.png")
    assert photo.thumbnail_size == (media / photo.thumbnail.name).stat().st_size > 0
    used = photo.size + photo.thumbnail_size
    assert Attachment.objects.filter(uploader=alice).stored_bytes() == used
    # A file that fits beside the photo's bytes, but not beside its thumbnail too.
    settings.CHAT_UPLOAD_QUOTA_BYTES = photo.size + 10
    with pytest.raises(ChatError) as refused:
        create(alice, b"x" * 10, "x.txt")
    assert (refused.value.code, refused.value.used) == ("over_quota", used)


@pytest.mark.django_db(transaction=True)
def test_two_uploads_at_once_never_both_take_the_room_that_one_leaves(alice, media, settings):
    from django.contrib.auth.models import User
    from django.db import transaction

    settings.CHAT_UPLOAD_QUOTA_BYTES = 1000
    results: list[object] = []

    def upload_600(name: str) -> None:
        try:
            results.append(create(alice, b"x" * 600, name))
        except ChatError as error:
            results.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload_600, args=(f"{n}.txt",)) for n in (1, 2)]
    # Held here, both uploads find the quota free before either stores its row.
    with transaction.atomic():
        User.objects.select_for_update().get(pk=alice.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(stored_files(media)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(stored_files(media)) == 2, "both uploads stored their bytes"
        time.sleep(0.3)  # and went on to wait for the lock
    for thread in threads:
        thread.join()
    [stored] = [result for result in results if isinstance(result, Attachment)]
    assert [result for result in results if result == "over_quota"] == ["over_quota"]
    assert Attachment.objects.filter(uploader=alice).stored_bytes() == 600
    assert stored_files(media) == [stored.file.name]


async def asgi_post(body: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    from chatsite.asgi import application

    communicator = HttpCommunicator(
        application, "POST", "/api/uploads/", body=body, headers=[(b"host", b"localhost"), *headers]
    )
    return await communicator.get_response(timeout=10)


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_edge_refuses_an_oversized_upload_by_its_content_length(alice, settings):
    settings.CHAT_UPLOAD_MAX_BYTES = 1000
    _, content_type = multipart(b"x" * 2000)
    token = (await sync_to_async_token(alice)).encode()
    huge = str(10**12).encode()  # told, never sent: nothing is read
    response = await asgi_post(
        b"",
        [
            (b"content-type", content_type),
            (b"content-length", huge),
            (b"authorization", b"Bearer " + token),
        ],
    )
    assert response["status"] == 413
    assert json.loads(response["body"]) == {
        "error": "too_large",
        "detail": "a file has at most 1000 bytes (1000 bytes)",
        "limit": 1000,
    }


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_edge_refuses_a_body_without_a_length_once_it_passes_the_limit(
    alice, settings
):
    settings.CHAT_UPLOAD_MAX_BYTES = 1000
    body, content_type = multipart(b"x" * (1000 + settings.CHAT_UPLOAD_OVERHEAD_BYTES))
    token = (await sync_to_async_token(alice)).encode()
    response = await asgi_post(
        body, [(b"content-type", content_type), (b"authorization", b"Bearer " + token)]
    )
    assert response["status"] == 413
    assert json.loads(response["body"])["limit"] == 1000
    assert not await count_attachments()


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
async def test_the_asgi_edge_lets_an_upload_within_the_limit_through(alice, settings):
    body, content_type = multipart(image_bytes(), "small.png")
    token = (await sync_to_async_token(alice)).encode()
    response = await asgi_post(
        body,
        [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", b"Bearer " + token),
        ],
    )
    assert response["status"] == 201, response["body"]
    assert json.loads(response["body"])["name"] == "small.png"


async def sync_to_async_token(user) -> str:
    return await database_sync_to_async(token_issue)(user=user)


async def count_attachments() -> int:
    return await database_sync_to_async(Attachment.objects.count)()
