"""What image uploads cost a real daphne worker's memory (docs/files.md, Memory).

One upload of any image may take a worker to at most 256 MiB at its peak, and
four at once to 512 MiB. The peak is the kernel's: VmHWM of /proc/<pid>/status,
reset before each upload by writing 5 to /proc/<pid>/clear_refs (Linux; the
tests run as root). The images are real files, uploaded over HTTP with a
user's token; the workers run with the default settings.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.test_attachments_live import media, request  # noqa: F401

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
ONE_UPLOAD_PEAK = 256 * MIB
FOUR_UPLOADS_PEAK = 512 * MIB
# CHAT_IMAGE_MAX_PIXELS' default (tests/test_settings_files.py): 4 bytes a pixel of it is
# the most one decode may take.
MAX_PIXELS = 24_000_000


def peak_reset(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak(pid: int) -> int:
    """The process's peak resident memory since the last peak_reset, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def encoded(image: Image.Image, format_name: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format_name, **save)
    return buffer.getvalue()


def blank_png() -> bytes:
    """The attack: 194 KB of PNG that claim 7070 x 7070 white pixels (50 megapixels)."""
    return encoded(Image.new("RGB", (7070, 7070), "white"), "PNG")


def largest_rgba_png() -> bytes:
    """The largest PNG decoded: RGBA, 4 bytes a pixel, of MAX_PIXELS (6000 x 4000)."""
    image = Image.new("RGBA", (6000, MAX_PIXELS // 6000), (250, 120, 0, 200))
    image.paste((0, 90, 200, 255), (0, 0, 3000, 2000))
    return encoded(image, "PNG")


def largest_webp() -> bytes:
    """The largest WebP decoded: 16 bytes a pixel, a quarter of MAX_PIXELS."""
    image = Image.new("RGBA", (3000, MAX_PIXELS // 4 // 3000), (250, 120, 0, 200))
    return encoded(image, "WEBP", lossless=True)


def largest_cmyk_jpeg() -> bytes:
    """The largest of the costliest JPEGs decoded: progressive CMYK without subsampling
    (8 bytes a pixel of coefficients), decoded at half its size (4 bytes a pixel of that)."""
    image = Image.new("CMYK", (3264, 3264), (0, 120, 250, 0))
    return encoded(image, "JPEG", progressive=True, subsampling=0, quality=90)


def upload(url: str, token: str, data: bytes, name: str) -> tuple[int, dict]:
    status, _, body = request(url + "/api/uploads/", token=token, data=data, name=name)
    return status, json.loads(body)


@pytest.fixture
def worker(cluster_factory, media):  # noqa: F811
    """One worker with the default settings, its files in `media`; (url, pid, token)."""
    cluster = cluster_factory(1, DJANGO_MEDIA_ROOT=str(media))
    process = cluster.workers[0].process
    assert process is not None
    return cluster.workers[0].url, process.pid, cluster.token("user00")


def test_a_blank_png_of_fifty_megapixels_costs_a_worker_less_than_256_mib(worker):
    url, pid, token = worker
    data = blank_png()
    peak_reset(pid)
    status, attachment = upload(url, token, data, "blank.png")
    used = peak(pid)
    print(f"\nblank 7070 x 7070 PNG ({len(data)} bytes): peak {used / MIB:.0f} MiB")
    assert status == 201, attachment
    # Over the limit: kept as a plain file, never decoded.
    assert (attachment["image"], attachment["size"]) == (False, len(data))
    assert used <= ONE_UPLOAD_PEAK, f"{used / MIB:.0f} MiB"


def test_the_largest_images_decoded_cost_a_worker_less_than_256_mib_each_time(worker):
    # One after the other, twice: what one decode freed must not stay with the
    # worker and add to the next one's peak.
    url, pid, token = worker
    files = [(largest_rgba_png(), "big.png"), (largest_webp(), "big.webp")]
    files.append((largest_cmyk_jpeg(), "big.jpg"))
    peaks = []
    for data, name in files * 2:
        peak_reset(pid)
        status, attachment = upload(url, token, data, name)
        peaks.append((name, peak(pid)))
        assert status == 201, attachment
        assert attachment["image"] is True, f"{name} is under the limit: decoded"
        thumbnail_url = url + attachment["thumbnail_url"]
        thumbnail_status, headers, thumbnail = request(thumbnail_url, token=token)
        assert (thumbnail_status, headers["Content-Type"]) == (200, "image/webp")
        with Image.open(io.BytesIO(thumbnail)) as small:
            assert max(small.size) == 480
    print("\n" + ", ".join(f"{name} {used / MIB:.0f} MiB" for name, used in peaks))
    assert all(used <= ONE_UPLOAD_PEAK for _, used in peaks), peaks


def test_four_of_the_largest_images_at_once_cost_a_worker_less_than_512_mib(worker):
    url, pid, token = worker
    data = largest_rgba_png()
    answers: list[tuple[int, dict]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(upload(url, token, data, "big.png")))
        for _ in range(4)
    ]
    peak_reset(pid)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = peak(pid)
    print(f"\nfour RGBA PNGs of {MAX_PIXELS} pixels at once: peak {used / MIB:.0f} MiB")
    assert [(status, body.get("image")) for status, body in answers] == [(201, True)] * 4
    assert used <= FOUR_UPLOADS_PEAK, f"{used / MIB:.0f} MiB"
