"""Find and share, end to end, in two real browsers on two workers: one person pastes an
image, the other sees it inline, finds the message by a word of it, and the search
result's permalink opens the room at that message, with the image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    WORKER_ENV,
    give_file,
    inline_image,
    messages_insert,
    png,
    uploaded,
)

pytestmark = pytest.mark.browser


def test_paste_an_image_find_it_and_open_its_permalink(
    cluster_factory, room, database_url, ann_and_ben, tmp_path: Path, artifacts
):
    cluster = cluster_factory(2, **WORKER_ENV, DJANGO_MEDIA_ROOT=str(tmp_path / "media"))
    ann, ben = ann_and_ben(cluster)
    messages_insert(database_url, room, ben.username, 20)
    ann.open_room(room)
    ben.open_room(room)

    # ann pastes a screenshot and says what it shows.
    give_file(ann, "paste", "screenshot.png", "image/png", png((640, 360), "teal"))
    uploaded(ann, 1)
    ann.send("the kangaroo dashboard after the deploy")
    inline_image(ben, 21)

    # The conversation moves on: the message is far above the newest.
    messages_insert(database_url, room, ben.username, 200)

    # ben searches from the header box; the word is highlighted in the result.
    ben.page.locator("#site-search-q").fill("kangaroo")
    ben.page.locator("#site-search-q").press("Enter")
    result = ben.page.locator(".search-result")
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text(re.compile("kangaroo", re.IGNORECASE))
    expect(result).to_contain_text(ann.username)
    ben.page.screenshot(path=artifacts / "search.png")

    # The result is the message's permalink: the room opens at it, image and all.
    result.locator("a").first.click()
    ben.page.wait_for_url(re.compile(rf"/rooms/{room}/\?around=21$"))
    expect(ben.page.locator("#connection")).to_have_attribute("data-state", "online")
    target = ben.message(21)
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bhighlight\b"))
    inline_image(ben, 21)
    assert 221 not in ben.message_ids()

    # Live messages keep coming, below, and reading on reaches them.
    ann.send("anyone seen the kangaroo?")
    expect(ben.page.locator("#jump-latest")).to_be_visible()
    ben.page.locator("#jump-latest").click()
    expect(ben.message(222)).to_be_visible()
    assert not ann.page_errors and not ben.page_errors
