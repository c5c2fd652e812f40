"""What an image may cost a worker (chat.files.images, docs/files.md, Memory): the pixel
limit, thumbnails a tile at a time, and the pool that bounds decodes at once.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import io
import random
import threading
import time
from typing import Any

import pytest
from PIL import Image, ImageOps

from chat.errors import ChatError
from chat.files import images
from chat.files.attachments import size_words, type_sniff
from chat.files.images import (
    DECODE_RETRY_AFTER,
    DecodePool,
    _thumbnail,
    decode_bytes,
    decode_pool,
    image_inspect,
    thumbnail_size,
)
from chat.models import Attachment
from tests.attachments_helpers import create, image_bytes, post_file, stored_files
from tests.attachments_helpers import media as media  # a fixture
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


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
