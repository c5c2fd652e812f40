"""Files and images (docs/files.md): names, types, thumbnails, uploads, attaching,
serving to readers only, the upload limit and the cleanup of uploads never attached.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import io
import json
import random
import struct
import threading
import time
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image, ImageOps

from chat import protocol
from chat.domain import events, payloads
from chat.domain.direct import direct_room_open
from chat.domain.writes import message_create, message_delete, message_edit
from chat.errors import ChatError
from chat.files import images
from chat.files.attachments import (
    NAME_MAX,
    attachment_create,
    attachments_unattached_delete,
    name_clean,
    size_words,
    type_sniff,
)
from chat.files.images import (
    DECODE_RETRY_AFTER,
    THUMBNAIL_BOX,
    DecodePool,
    _thumbnail,
    decode_bytes,
    decode_pool,
    image_inspect,
    thumbnail_size,
)
from chat.models import Attachment, Message, Room
from chat.web.tokens import token_issue
from tests.helpers import logged_in, send

pytestmark = pytest.mark.django_db

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


def jpeg_turned(size: tuple[int, int] = (80, 40)) -> bytes:
    """A JPEG stored 80x40 whose EXIF says: shown turned a quarter (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return image_bytes("JPEG", size, exif=exif.tobytes())


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, *, depth: int = 1, color: int = 0) -> bytes:
    """A small, well-formed PNG whose header claims width x height pixels (a bomb):
    1-bit grey, or of the bit `depth` and `color` type given (8, 2: RGB)."""
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024, 9)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


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


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("cat.png", "cat.png"),
        ("../../etc/passwd", "passwd"),
        ("/home/me/photos/cat.png", "cat.png"),
        ("C:\\Users\\me\\Desktop\\report.pdf", "report.pdf"),
        ("a/b\\c.txt", "c.txt"),
        ("nul\x00in\x00it.txt", "nulinit.txt"),
        ("line\nbreak\r\nand\ttab.txt", "line break and tab.txt"),
        ("\x1b[31mred\x1b[0m.txt", "[31mred[0m.txt"),
        ("photo\u202egnp.exe", "photognp.exe"),
        ("  spaced   out  .png  ", "spaced out .png"),
        (".bashrc", "bashrc"),
        ("trailing dots...", "trailing dots"),
        ("..", "file"),
        ("", "file"),
        ("\x00\x01\x02", "file"),
        ("family 👨\u200d👩\u200d👧.png", "family 👨\u200d👩\u200d👧.png"),
        ("Cafe\u0301.txt", "Café.txt"),
        (None, "file"),
        (42, "file"),
    ],
)
def test_names_are_cleaned(raw, clean):
    assert name_clean(raw) == clean


def test_a_name_of_a_thousand_characters_is_cut_keeping_its_extension():
    name = name_clean("x" * 1000 + ".png")
    assert len(name) == NAME_MAX
    assert name == "x" * (NAME_MAX - 4) + ".png"
    # Without an extension it is simply cut; one too long to be one is cut too.
    assert name_clean("y" * 1000) == "y" * NAME_MAX
    assert len(name_clean("z" * 500 + "." + "q" * 500)) == NAME_MAX


def test_a_long_name_never_ends_in_a_dot_or_space_where_it_was_cut():
    name = name_clean("a" * (NAME_MAX - 5) + "    . " + "b" * 300 + ".txt")
    assert name.endswith("a.txt") and len(name) <= NAME_MAX


# --- types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (image_bytes("PNG"), "image/png"),
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("GIF"), "image/gif"),
        (image_bytes("WEBP"), "image/webp"),
        (b"%PDF-1.7\n...", "application/pdf"),
        (b"PK\x03\x04" + b"\x00" * 30, "application/zip"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"hello, world\n", "text/plain"),
        ("naïve café ☕\n".encode(), "text/plain"),
        # A UTF-8 character cut by the end of what was read is still text.
        (("x" * 10 + "☕").encode()[:-1], "text/plain"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "text/plain"),
        (b"\x00\x01\x02binary", "application/octet-stream"),
        (b"text with an \x1b escape", "application/octet-stream"),
        (b"\xff\xfe\xfd not utf-8", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_types_are_sniffed_from_the_bytes(head, content_type):
    assert type_sniff(head) == content_type


@pytest.mark.parametrize("format_name", ["PNG", "JPEG", "GIF", "WEBP"])
def test_images_are_decoded_and_given_a_thumbnail(format_name):
    data = image_bytes(format_name, (1200, 600))
    inspected = image_inspect(io.BytesIO(data), claimed=type_sniff(data))
    assert inspected is not None
    assert (inspected.width, inspected.height) == (1200, 600)
    with Image.open(io.BytesIO(inspected.thumbnail)) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == (THUMBNAIL_BOX[0], THUMBNAIL_BOX[0] // 2)


def test_a_transparent_image_keeps_its_transparency_in_the_thumbnail():
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (10, 10, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    data = buffer.getvalue()
    inspected = image_inspect(io.BytesIO(data), claimed="image/png")
    assert inspected is not None
    with Image.open(io.BytesIO(inspected.thumbnail)) as thumbnail:
        assert thumbnail.mode == "RGBA"


def test_an_exif_turned_photo_is_measured_and_thumbnailed_upright():
    inspected = image_inspect(io.BytesIO(jpeg_turned((80, 40))), claimed="image/jpeg")
    assert inspected is not None
    assert (inspected.width, inspected.height) == (40, 80)
    with Image.open(io.BytesIO(inspected.thumbnail)) as thumbnail:
        assert thumbnail.size == (40, 80)
        # Stored left red, right blue; turned clockwise: red on top, blue below.
        top, bottom = thumbnail.convert("RGB").getpixel((20, 5)), thumbnail.getpixel((20, 75))
        assert top[0] > 200 and top[2] < 60, top
        assert bottom[2] > 200 and bottom[0] < 60, bottom


@pytest.mark.parametrize(
    "data",
    [
        PNG_SIGNATURE + b"not really a png at all" * 10,
        image_bytes("PNG", (300, 300))[:400],  # truncated
        b"\xff\xd8\xff\xe0" + b"\x00" * 200,  # a JPEG's first bytes, then nothing
        b"GIF89a" + b"\x00" * 4,
        b"RIFF\x10\x00\x00\x00WEBPjunkjunk",
        png_claiming(100_000, 100_000),  # Pillow's own bomb limit
        png_claiming(9_000, 10_000),  # over Pillow's warning, 1 byte a pixel: under ours
        png_claiming(6_000, 4_001, depth=8, color=2),  # over ours (RGB, 4 bytes a pixel)
    ],
    ids=[
        "fake-png",
        "truncated",
        "jpeg-head",
        "gif-head",
        "webp-head",
        "bomb",
        "pillow-warns",
        "too-many-pixels",
    ],
)
def test_what_claims_to_be_an_image_but_is_not_is_no_image(data):
    claimed = type_sniff(data)
    assert claimed.startswith("image/")
    assert image_inspect(io.BytesIO(data), claimed=claimed) is None


def test_the_pixel_limit_is_the_one_tested(settings):
    from chatsite import settings as site_settings

    # The RGB bomb above is one row over the default; a camera's 6000 x 4000 is not.
    assert site_settings.CHAT_IMAGE_MAX_PIXELS == 6_000 * 4_000
    assert settings.CHAT_IMAGE_MAX_PIXELS == site_settings.CHAT_IMAGE_MAX_PIXELS


def test_only_the_four_inline_types_are_ever_decoded():
    data = image_bytes("BMP")
    assert image_inspect(io.BytesIO(data), claimed="image/bmp") is None
    assert image_inspect(io.BytesIO(image_bytes("PNG")), claimed="application/pdf") is None


# --- what an image may cost a worker (chat.files.images, docs/files.md, Memory) ----------------


def encoded(image: Image.Image, format_name: str, **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format_name, **save)
    return buffer.getvalue()


def decoded(data: bytes) -> bool:
    return image_inspect(io.BytesIO(data), claimed=type_sniff(data)) is not None


def test_the_pixel_limit_is_a_setting_and_counts_what_a_decode_takes(settings):
    settings.CHAT_IMAGE_MAX_PIXELS = 10_000  # a budget of 40,000 bytes
    # RGB and RGBA take 4 bytes a pixel: 10,000 pixels at most.
    assert decoded(image_bytes("PNG", (100, 100), "RGBA"))
    assert not decoded(image_bytes("PNG", (100, 101), "RGBA"))
    assert not decoded(image_bytes("PNG", (101, 100), "RGB"))
    # A palette or grey image, 1 byte a pixel: four times as many.
    assert decoded(image_bytes("PNG", (200, 200), "P"))
    assert decoded(image_bytes("GIF", (200, 200), "L"))
    assert not decoded(image_bytes("PNG", (200, 201), "P"))
    # A WebP, 16 bytes a pixel: a quarter.
    assert decoded(image_bytes("WEBP", (50, 50)))
    assert not decoded(image_bytes("WEBP", (50, 51)))


def test_a_jpeg_is_counted_at_its_decoded_size_and_by_its_coefficients():
    # Drafted to half its size (1000 x 1000 is the smallest at least twice the box)...
    for subsampling, samples in [(2, 2000 * 2000 + 2 * 1000 * 1000), (0, 3 * 2000 * 2000)]:
        data = image_bytes("JPEG", (2000, 2000), progressive=True, subsampling=subsampling)
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (960, 960))
            assert image.size == (1000, 1000)
            # ... 4 bytes a pixel of that, and 2 bytes a sample of every component
            # at full size (4:2:0 subsamples both chroma components by 2 x 2).
            assert decode_bytes(image, size=(2000, 2000)) == 1000 * 1000 * 4 + 2 * samples


def test_an_image_over_the_limit_is_stored_as_a_plain_file(alice, media, settings):
    settings.CHAT_IMAGE_MAX_PIXELS = 1_000
    data = image_bytes("PNG", (40, 26))
    attachment = create(alice, data, "big.png")
    assert (attachment.image, attachment.content_type, attachment.thumbnail.name) == (
        False,
        "application/octet-stream",
        "",
    )
    assert (media / attachment.file.name).read_bytes() == data
    assert create(alice, image_bytes("PNG", (40, 25)), "fits.png").image


def test_a_palette_image_is_thumbnailed_smooth_not_by_nearest_pixels():
    # A 1-pixel checkerboard of black and white, halved: every pixel of the
    # thumbnail is grey (NEAREST would keep black or white).
    board = Image.new("P", (960, 960))
    board.putpalette([0, 0, 0, 255, 255, 255])
    board.putdata([(x + y) % 2 for y in range(960) for x in range(960)])
    inspected = image_inspect(io.BytesIO(encoded(board, "PNG")), claimed="image/png")
    assert inspected is not None
    with Image.open(io.BytesIO(inspected.thumbnail)) as thumbnail:
        assert (thumbnail.size, thumbnail.mode) == ((480, 480), "RGB")
        values = [thumbnail.getpixel((x, y))[0] for x in (10, 240, 470) for y in (10, 240, 470)]
        assert all(100 < value < 155 for value in values), values


def test_a_palette_image_with_a_transparent_colour_keeps_it_in_the_thumbnail():
    image = Image.new("P", (600, 300), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(1, (0, 0, 300, 300))  # left half red, right half transparent
    inspected = image_inspect(
        io.BytesIO(encoded(image, "PNG", transparency=0)), claimed="image/png"
    )
    assert inspected is not None
    with Image.open(io.BytesIO(inspected.thumbnail)) as thumbnail:
        assert thumbnail.mode == "RGBA" and thumbnail.size == (480, 240)
        assert thumbnail.getpixel((60, 120))[3] == 255
        assert thumbnail.getpixel((420, 120))[3] == 0


@pytest.mark.parametrize(("orientation", "size"), [(3, (80, 40)), (8, (40, 80)), (5, (40, 80))])
def test_every_exif_turn_is_applied_to_the_size_and_the_thumbnail(orientation, size):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = image_bytes("JPEG", (80, 40), exif=exif.tobytes())
    inspected = image_inspect(io.BytesIO(data), claimed="image/jpeg")
    assert inspected is not None
    assert (inspected.width, inspected.height) == size
    with (
        Image.open(io.BytesIO(data)) as stored,
        Image.open(io.BytesIO(inspected.thumbnail)) as thumbnail,
    ):
        upright = ImageOps.exif_transpose(stored).convert("RGB")
        assert thumbnail.size == upright.size
        # Red where Pillow's own exif_transpose puts red (the stored left half).
        for point in [(5, 5), (upright.width - 5, upright.height - 5)]:
            want, got = upright.getpixel(point), thumbnail.convert("RGB").getpixel(point)
            assert abs(want[0] - got[0]) < 60 and abs(want[2] - got[2]) < 60, (point, want, got)


@pytest.mark.parametrize("tile_pixels", [images.TILE_PIXELS, 5_000])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_thumbnails_made_a_tile_at_a_time_equal_those_of_the_whole_image(
    mode, tile_pixels, monkeypatch
):
    # 3001 x 2003 pixels reduced 3 times (for 480 x 320), which divides neither side;
    # in tiles of whole rows, or (5,000 pixels) of 1,665 x 3 pixels.
    monkeypatch.setattr(images, "TILE_PIXELS", tile_pixels)
    rng = random.Random(7)
    noise = Image.frombytes("RGBA", (3001, 2003), rng.randbytes(3001 * 2003 * 4))
    image = noise.convert(mode) if mode != "RGBA" else noise
    has_alpha = mode == "RGBA"
    whole = image.convert("RGBa" if has_alpha else "RGB")
    assert thumbnail_size(image.size) == (480, 320)
    expected = whole.reduce((3, 3)).resize((480, 320), Image.Resampling.BICUBIC)
    if has_alpha:
        expected = expected.convert("RGBA")
    assert _thumbnail(image, has_alpha=has_alpha).tobytes() == expected.tobytes()


# --- how many decodes at once (chat.files.images.DecodePool) ----------------------------------


def test_decodes_run_on_the_pools_own_threads_at_most_its_size_at_once():
    pool = DecodePool(2)
    running, most, names = [0], [0], set()
    lock = threading.Lock()

    def decode() -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    threads = [
        threading.Thread(target=lambda: names.add(pool.run(decode, wait=5))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 2
    assert len(names) == 2 and all(name.startswith("image-decode") for name in names)
    assert threading.current_thread().name not in names


def test_a_decode_that_cannot_start_in_time_is_refused_as_unavailable():
    pool, release = DecodePool(1), threading.Event()
    holder = threading.Thread(target=pool.run, args=(release.wait, 10))
    holder.start()
    try:
        started = time.monotonic()
        with pytest.raises(ChatError) as refused:
            pool.run(lambda: "never", wait=0.2)
        assert 0.2 <= time.monotonic() - started < 2
        assert (refused.value.code, refused.value.retry_after) == ("unavailable", 2.0)
    finally:
        release.set()
        holder.join()
    assert pool.run(lambda: "now", wait=0.2) == "now"


@pytest.mark.redis
def test_an_upload_that_waits_too_long_for_a_decode_is_503_and_costs_nothing(
    alice, media, settings
):
    settings.CHAT_IMAGE_DECODES, settings.CHAT_IMAGE_DECODE_WAIT = 1, 0.2
    settings.CHAT_UPLOAD_RATE_LIMIT = (1, 60)
    release = threading.Event()
    holder = threading.Thread(target=decode_pool().run, args=(release.wait, 10))
    holder.start()
    try:
        refused = post_file(logged_in(alice), image_bytes())
    finally:
        release.set()
        holder.join()
    assert refused.status_code == 503
    assert refused.json() == {
        "error": "unavailable",
        "detail": "the server is busy with other images: try again in 2 s",
        "retry_after": DECODE_RETRY_AFTER,
    }
    assert refused["Retry-After"] == "2"
    assert not Attachment.objects.exists() and stored_files(media) == []
    # Nothing was stored, so the one upload a minute is still there to take.
    assert post_file(logged_in(alice), image_bytes()).status_code == 201


def test_sizes_in_words():
    assert [size_words(n) for n in (0, 1023, 1024, 1536, 10 * 1024 * 1024)] == [
        "0 bytes",
        "1023 bytes",
        "1 KiB",
        "1.5 KiB",
        "10 MiB",
    ]


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


# --- POST /api/uploads/ ------------------------------------------------------------------


def post_file(client: Client, data: bytes, name: str = "photo.png", **extra):
    return client.post("/api/uploads/", {"file": upload(data, name, "image/png")}, **extra)


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
