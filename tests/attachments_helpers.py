"""Files made for the tests of attachments (tests/test_attachments_*.py, test_serving.py):
images of chosen shapes, a MEDIA_ROOT of each test's own, uploads stored and fetched.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from chat.domain import payloads
from chat.domain.writes import message_create
from chat.files.attachments import attachment_create
from chat.models import Attachment, Room

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- files made here ---------------------------------------------------------------------


def image_bytes(
    format_name: str = "PNG",
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    **save: Any,
) -> bytes:
    image = Image.new(mode, size, "red" if mode != "P" else 1)
    if mode == "RGB":
        # Left half red, right half blue: a rotation shows in the thumbnail.
        image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format_name, **save)
    return buffer.getvalue()


def upload(data: bytes, name: str = "file.bin", content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    """A MEDIA_ROOT of this test's own, on the default FileSystemStorage."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHAT_FILES_ACCEL_REDIRECT = ""
    settings.CHAT_S3_BUCKET = ""
    return settings.MEDIA_ROOT


def stored_files(media: Path) -> list[str]:
    if not media.exists():
        return []
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


def create(user, data: bytes, name: str = "file.bin") -> Attachment:
    return attachment_create(uploader=user, file=upload(data, name), name=name)


# --- POST /api/uploads/ ------------------------------------------------------------------


def post_file(client: Client, data: bytes, name: str = "photo.png", **extra):
    return client.post("/api/uploads/", {"file": upload(data, name, "image/png")}, **extra)


# --- the limit at the ASGI edge, before Django reads the body ---------------------------


def multipart(data: bytes, name: str = "big.bin") -> tuple[bytes, bytes]:
    boundary = b"----chatsite-test-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        b"--" + boundary + b"--\r\n"
    )
    return body, b"multipart/form-data; boundary=" + boundary


# --- who may fetch a file ----------------------------------------------------------------


def fetch(client: Client, attachment: Attachment | dict, *, thumbnail: bool = False, **extra):
    payload = (
        attachment if isinstance(attachment, dict) else payloads.attachment_payload(attachment)
    )
    return client.get(payload["thumbnail_url"] if thumbnail else payload["url"], **extra)


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def attached(room: Room, author, data: bytes, name: str) -> Attachment:
    attachment = create(author, data, name)
    message_create(
        room_id=room.pk, author=author, body="", client_id=None, attachments=[attachment.pk]
    )
    attachment.refresh_from_db()
    return attachment
