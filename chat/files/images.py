"""Images within a worker's memory: which are decoded, their thumbnails, how many at once.

An upload that claims to be an image is decoded once, to check it and make its
thumbnail (docs/files.md, Memory). What that may cost a worker is decided from
the header, before any pixel is decoded:

1. The decode's peak in bytes, by format, as measured (decode_bytes): Pillow
   keeps 4 bytes a pixel (1 for a palette, grey or 1-bit image, 2 for 16-bit
   grey). A JPEG decodes at 1/2 to 1/8 of its size (draft), but libjpeg keeps
   every DCT coefficient of the whole image, 2 bytes a sample, for a
   progressive or multi-scan file, and only its scans say which it is: every
   JPEG is counted so. libwebp keeps its canvas twice and Pillow copies the
   frame twice more: 16 bytes a pixel.
2. An image whose decode would take more than 4 x CHAT_IMAGE_MAX_PIXELS bytes
   (an RGBA PNG of CHAT_IMAGE_MAX_PIXELS pixels), or that has more pixels than
   Pillow's own bomb limit, is not decoded: it is kept as a plain file.
3. The thumbnail never holds a second full-size copy: the decoded image is
   converted and reduced a tile at a time (_thumbnail), and only the reduced
   image is resized, turned upright and encoded.
4. At most CHAT_IMAGE_DECODES decodes run at once in a worker, on threads of
   their own (DecodePool); an upload that cannot start one within
   CHAT_IMAGE_DECODE_WAIT seconds is refused with `unavailable`.
5. glibc maps each large buffer alone and unmaps it once freed
   (memory_setup, when the app starts), so that what one decode freed is not
   kept and added to the next one's peak.

So a worker's images take at most CHAT_IMAGE_DECODES x 4 x CHAT_IMAGE_MAX_PIXELS
bytes, plus a few MiB a decode for tiles and the reduced image.
"""

from __future__ import annotations

import ctypes
import functools
import io
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TypeVar

from django.conf import settings
from PIL import ExifTags, Image

from chat.errors import ChatError

# Thumbnails fit in this box (pixels), as WebP.
THUMBNAIL_BOX = (480, 480)
THUMBNAIL_QUALITY = 80
# The reduced image is at least this many times the thumbnail (as Image.thumbnail's
# reducing_gap): the last resize then looks as good as one from the full size.
REDUCING_GAP = 2
# Pixels of one tile converted and reduced at a time (4 MiB in RGBA).
TILE_PIXELS = 1024 * 1024
# The only types shown inline, by Pillow's name of the format.
INLINE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}

# Measured peaks (docs/files.md, Memory): bytes a pixel Pillow keeps by mode, 4 otherwise.
MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2}
# libjpeg's buffer of a progressive or multi-scan JPEG: 64 coefficients of 2 bytes a block.
JPEG_COEFFICIENT_BYTES = 2
# libwebp's canvas and its copy of the previous frame, the frame's bytes, Pillow's image.
WEBP_BYTES_PER_PIXEL = 16
# Seconds after which an upload refused for a busy pool may come again: a decode
# at the limit takes about a second on two cores (measured).
DECODE_RETRY_AFTER = 2.0

# EXIF orientation -> the turn that shows the image upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_FORMATS = {content_type: name for name, content_type in INLINE_TYPES.items()}

T = TypeVar("T")


@dataclass(frozen=True)
class Inspected:
    """An image Pillow decoded: its type, its size as shown (EXIF-rotated), its thumbnail."""

    content_type: str
    width: int
    height: int
    thumbnail: bytes


def image_inspect(file: IO[bytes], *, claimed: str) -> Inspected | None:
    """Decode an image whose bytes claim to be `claimed` (a type of INLINE_TYPES), on
    the decode pool.

    None when it is not one after all: Pillow cannot open it as that format,
    verify it or decode it, or its decode would take more than the budget
    (decode_budget). The file is then kept as a plain file, never shown inline.
    A pool that stays full for CHAT_IMAGE_DECODE_WAIT: ChatError(unavailable).
    """
    format_name = _FORMATS.get(claimed)
    if format_name is None:
        return None
    return decode_pool().run(_image_decode_or_none, file, format_name)


def decode_budget() -> int:
    """The most bytes one decode may take: an RGBA image of CHAT_IMAGE_MAX_PIXELS."""
    return 4 * settings.CHAT_IMAGE_MAX_PIXELS


def decode_bytes(image: Image.Image, *, size: tuple[int, int]) -> int:
    """The peak, in bytes, of loading `image` (opened and drafted, not loaded), as
    measured; `size` is its size in the file (a drafted JPEG decodes smaller)."""
    pixels = size[0] * size[1]
    if image.format == "WEBP":
        return WEBP_BYTES_PER_PIXEL * pixels
    decoded = image.width * image.height * MODE_BYTES.get(image.mode, 4)
    if image.format == "JPEG":
        decoded += JPEG_COEFFICIENT_BYTES * _jpeg_samples(image, size)
    return decoded


def _jpeg_samples(image: Image.Image, size: tuple[int, int]) -> int:
    """Samples of every component of a JPEG at full size (chroma is often subsampled)."""
    layers: list[tuple[int, int, int, int]] = getattr(image, "layer", None) or []
    if not layers:
        return size[0] * size[1] * 4  # unknown: as many as the most a JPEG has
    most_h = max(h for _, h, _, _ in layers) or 1
    most_v = max(v for _, _, v, _ in layers) or 1
    return sum(
        math.ceil(size[0] * h / most_h) * math.ceil(size[1] * v / most_v) for _, h, v, _ in layers
    )


def _image_decode_or_none(file: IO[bytes], format_name: str) -> Inspected | None:
    try:
        return _image_decode(file, format_name)
    except Exception:  # Pillow's parsers raise many types on bad input
        return None


def _image_decode(file: IO[bytes], format_name: str) -> Inspected | None:
    file.seek(0)
    with Image.open(file, formats=[format_name]) as probe:
        probe.verify()  # the file's own checks (a PNG's CRCs), without its pixels
    file.seek(0)
    with Image.open(file, formats=[format_name]) as image:
        size = image.size
        bomb = Image.MAX_IMAGE_PIXELS
        if bomb is not None and size[0] * size[1] > bomb:
            return None  # a bomb by Pillow's measure too (it warned at open)
        # A JPEG decodes straight to a fraction of its size, enough for the box.
        image.draft("RGB", (THUMBNAIL_BOX[0] * REDUCING_GAP, THUMBNAIL_BOX[1] * REDUCING_GAP))
        if decode_bytes(image, size=size) > decode_budget():
            return None
        image.load()
        # Only now: a PNG's getexif() decodes the image first (EXIF may follow the pixels).
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        small = _thumbnail(image, has_alpha=has_alpha)
    width, height = size
    if orientation in UPRIGHT:
        small = small.transpose(UPRIGHT[orientation])
        if orientation in (5, 6, 7, 8):
            width, height = height, width  # shown turned a quarter
    buffer = io.BytesIO()
    small.save(buffer, "WEBP", quality=THUMBNAIL_QUALITY)
    return Inspected(
        content_type=INLINE_TYPES[format_name],
        width=width,
        height=height,
        thumbnail=buffer.getvalue(),
    )


def thumbnail_size(size: tuple[int, int]) -> tuple[int, int]:
    """An image's size fitted in THUMBNAIL_BOX, its aspect kept (never made larger)."""
    scale = min(THUMBNAIL_BOX[0] / size[0], THUMBNAIL_BOX[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _thumbnail(image: Image.Image, *, has_alpha: bool) -> Image.Image:
    """The loaded `image` fitted in THUMBNAIL_BOX, in RGBA (has_alpha) or RGB.

    Image.thumbnail would hold more than the image itself: a palette or 1-bit
    image is resized with NEAREST (it looks bad), so it is converted to RGB
    whole first (4 bytes a pixel more), and an RGBA image is premultiplied
    whole (RGBa) before it is reduced. Here each tile of the image is
    converted (and premultiplied) alone and reduced by whole factors into a
    small image of at least REDUCING_GAP times the thumbnail, which alone is
    resized: the same pixels as Image.reduce of the whole, tiles being
    aligned to the factors.
    """
    width, height = image.size
    final = thumbnail_size(image.size)
    factor_x = max(1, int(width / final[0] / REDUCING_GAP))
    factor_y = max(1, int(height / final[1] / REDUCING_GAP))
    working = "RGBa" if has_alpha else "RGB"
    reduced = Image.new(working, (math.ceil(width / factor_x), math.ceil(height / factor_y)))
    tile_width = min(width, max(factor_x, TILE_PIXELS // factor_y // factor_x * factor_x))
    tile_height = max(factor_y, TILE_PIXELS // tile_width // factor_y * factor_y)
    for top in range(0, height, tile_height):
        for left in range(0, width, tile_width):
            right, bottom = min(width, left + tile_width), min(height, top + tile_height)
            tile = image.crop((left, top, right, bottom))
            tile = tile.convert("RGBA").convert("RGBa") if has_alpha else tile.convert("RGB")
            reduced.paste(tile.reduce((factor_x, factor_y)), (left // factor_x, top // factor_y))
    small = reduced.resize(final, Image.Resampling.BICUBIC) if reduced.size != final else reduced
    return small.convert("RGBA") if has_alpha else small


# --- how many at once ---------------------------------------------------------------------


class DecodePool:
    """At most `size` decodes at once, on `size` threads of their own.

    Not on the request's thread (under ASGI each request has one of its own,
    and there is no bound on how many), nor on the sockets' database thread.
    A caller waits at most `wait` seconds for a free place; then
    ChatError(unavailable) with DECODE_RETRY_AFTER, rather than a queue that
    grows without end.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._places = threading.BoundedSemaphore(size)
        # As many threads as places: a decode given a place starts at once.
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="image-decode")

    def run(self, function: Callable[..., T], *args: object, wait: float | None = None) -> T:
        """`function(*args)` on one of the pool's threads, once a place is free; its result."""
        wait = settings.CHAT_IMAGE_DECODE_WAIT if wait is None else wait
        if not self._places.acquire(timeout=wait):
            raise ChatError(
                "unavailable",
                f"the server is busy with other images: try again in {DECODE_RETRY_AFTER:g} s",
                retry_after=DECODE_RETRY_AFTER,
            )
        try:
            return self._threads.submit(function, *args).result()
        finally:
            self._places.release()


# glibc's M_MMAP_THRESHOLD (malloc.h), and the size from which a block is mapped alone.
M_MMAP_THRESHOLD = -3
MAPPED_ALONE_BYTES = 1024 * 1024


def memory_setup() -> None:
    """Have glibc map every block of MAPPED_ALONE_BYTES or more alone, and unmap it when freed.

    By default glibc raises that threshold to the largest block freed (up to
    32 MiB) and serves later ones from its arenas, which keep what is freed:
    measured, a worker that had decoded a few large images rested at 236 MiB
    instead of 100, and its next upload peaked at 266 MiB instead of 195.
    Image buffers (Pillow's blocks of 16 MiB, libwebp's canvases, a frame's
    bytes) are then mapped for each decode and given back after it. Nothing on
    other C libraries.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(M_MMAP_THRESHOLD, MAPPED_ALONE_BYTES)


@functools.cache
def _pool(size: int) -> DecodePool:
    return DecodePool(size)


def decode_pool() -> DecodePool:
    """This worker's pool, of CHAT_IMAGE_DECODES places."""
    return _pool(settings.CHAT_IMAGE_DECODES)
