"""Files in two real browsers, on two workers: attached with the button, dropped on the
room and pasted into the box; images shown inline, other files as cards (docs/files.md)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.helpers import (
    WORKER_ENV,
    fresh_username,
    give_file,
    inline_image,
    png,
    uploaded,
)

pytestmark = pytest.mark.browser

# Where the workers keep their files; a test's own (see the `media` fixture).
MEDIA_ENV = "DJANGO_MEDIA_ROOT"


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


def test_files_reach_the_other_person_inline_or_as_cards(
    cluster_factory, room, ann_and_ben, media, artifacts
):
    cluster = cluster_factory(2, **WORKER_ENV, **{MEDIA_ENV: str(media)})
    ann, ben = ann_and_ben(cluster)
    ann.open_room(room)
    ben.open_room(room)

    # The 📎 button: an image, uploaded with its progress, sent without words.
    with ann.page.expect_file_chooser() as chooser:
        ann.page.locator("button#attach").click()
    chooser.value.set_files(
        files=[{"name": "sunset.png", "mimeType": "image/png", "buffer": png((640, 400), "orange")}]
    )
    uploaded(ann, 1)
    ann.page.locator("button#send").click()
    expect(ann.page.locator("#upload-tray")).to_be_hidden()
    image = inline_image(ben, 1)
    expect(image).to_have_attribute("alt", "sunset.png")
    expect(ben.message(1).locator(".body")).to_be_hidden()
    inline_image(ann, 1)
    link = ben.message(1).locator("a.attachment-image")
    href = link.get_attribute("href")
    assert href is not None and re.fullmatch(r"/files/\d+/sunset\.png", href)
    # The full image opens for the reader; the thumbnail is not the original.
    full = ben.page.request.get(ben.base_url + href)
    assert full.status == 200 and full.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(full.body())).size == (640, 400)

    # Pasted into the box, with words.
    ann.page.locator("textarea#body").fill("the view from here")
    give_file(ann, "paste", "image.png", "image/png", png((300, 300), "teal"))
    uploaded(ann, 1)
    ann.page.locator("textarea#body").press("Enter")
    expect(ben.message(2).locator(".body")).to_have_text("the view from here")
    inline_image(ben, 2)

    # Dropped on the room: a file that is no image, and one that only claims to be.
    give_file(ben, "drop", "notes.txt", "text/plain", b"bring snacks\n" * 100)
    give_file(ben, "drop", "cat.png", "image/png", b"\x89PNG\r\n\x1a\nnot a picture at all")
    uploaded(ben, 2)
    ben.page.locator("button#send").click()
    cards = ann.message(3).locator(".attachments a.attachment-file")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator(".attachment-name")).to_have_text("notes.txt")
    expect(cards.nth(0).locator(".attachment-size")).to_have_text("1.3 KB")
    expect(cards.nth(1).locator(".attachment-name")).to_have_text("cat.png")
    expect(ann.message(3).locator("img")).to_have_count(0)
    download = ann.page.request.get(ann.base_url + (cards.nth(1).get_attribute("href") or ""))
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"] == "application/octet-stream"

    # A file removed from the tray is not sent.
    ann.page.locator("textarea#body").fill("just words")
    give_file(ann, "paste", "oops.png", "image/png", png((20, 20), "red"))
    uploaded(ann, 1)
    ann.page.locator("#upload-tray .upload-remove").click()
    expect(ann.page.locator("#upload-tray")).to_be_hidden()
    ann.page.locator("textarea#body").press("Enter")
    expect(ben.message(4).locator(".body")).to_have_text("just words")
    expect(ben.message(4).locator(".attachments")).to_be_hidden()

    # After a reload, history draws the same.
    ben.open_room(room)
    inline_image(ben, 1)
    expect(ben.message(3).locator("a.attachment-file")).to_have_count(2)
    ben.page.screenshot(path=str(artifacts / "room-files.png"))
    for person in (ann, ben):
        assert person.dialogs == [] and person.page_errors == [], person.page_errors


def test_a_file_over_the_limit_is_refused_in_words_before_it_is_sent(
    cluster_factory, room, open_person, media
):
    cluster = cluster_factory(
        1, **WORKER_ENV, **{MEDIA_ENV: str(media)}, CHAT_UPLOAD_MAX_BYTES="2000"
    )
    ann = open_person(cluster.workers[0].url)
    ann.signup(fresh_username("ann"))
    ann.open_room(room)
    give_file(ann, "drop", "big.bin", "application/octet-stream", b"x" * 2001)
    expect(ann.page.locator("#send-error")).to_have_text("big.bin is too large: files up to 2 KB.")
    expect(ann.page.locator("#upload-tray")).to_be_hidden()
    assert not media.exists() or not any(path.is_file() for path in media.rglob("*"))
