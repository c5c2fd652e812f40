"""Files' names and types (docs/files.md): names cleaned and cut, types sniffed from the
bytes, images decoded and thumbnailed upright and with their transparency.

Real files in a MEDIA_ROOT of each test's own, the real database and Redis.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from chat.files.attachments import NAME_MAX, name_clean, type_sniff
from chat.files.images import THUMBNAIL_BOX, image_inspect
from tests.attachments_helpers import PNG_SIGNATURE, image_bytes
from tests.attachments_helpers import media as media  # a fixture

pytestmark = pytest.mark.django_db


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
