"""Permalinks in a real Chromium: a room opened at an old message, with live ones after it.

The reader reads forward from the permalink to the newest, through live
messages that came meanwhile, and sees every message once, in order.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import messages_insert

pytestmark = pytest.mark.browser


def test_a_permalink_opens_the_message_and_reads_on_to_live_ones(
    two_workers, room, database_url, ann_and_ben, artifacts
):
    ann, ben = ann_and_ben(two_workers)
    messages_insert(database_url, room, ann.username, 300)
    ann.open_room(room)

    # Every message's time links to it.
    link = ann.message(300).locator("a.permalink")
    assert link.get_attribute("href") == f"/rooms/{room}/?around=300"

    ben.goto(f"/rooms/{room}/?around=40")
    expect(ben.page.locator("#connection")).to_have_attribute("data-state", "online")
    target = ben.message(40)
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bhighlight\b"))
    expect(ben.page.locator("#jump-latest")).to_be_visible()
    assert 300 not in ben.message_ids()

    # A live message while ben reads the past: kept below, not shown out of place.
    ann.send("live while ben reads")
    expect(ben.page.locator("#jump-latest")).to_have_text("New messages: jump to latest")
    assert ben.message(301).count() == 0
    ben.page.screenshot(path=artifacts / "permalink.png")

    # Scrolling down reads forward, page by page, until the live one.
    for _ in range(20):
        if ben.message(301).count():
            break
        ben.page.locator("#messages").evaluate("list => list.scrollTop = list.scrollHeight")
        ben.page.wait_for_timeout(300)
    expect(ben.message(301)).to_be_visible()
    ids = ben.message_ids()
    assert ids == list(range(ids[0], 302)), ids

    # Back at the newest: live messages show as usual.
    ann.send("and after that")
    expect(ben.message(302)).to_be_visible()
    assert ben.message_ids()[-2:] == [301, 302]

    # Sending from a permalink goes to the newest first, and the message is sent.
    ben.goto(f"/rooms/{room}/?around=5")
    expect(ben.message(5)).to_be_in_viewport()
    expect(ben.page.locator("#connection")).to_have_attribute("data-state", "online")
    ben.send("from the past")
    expect(ann.message(303)).to_contain_text("from the past")
    expect(ben.message(303)).to_be_visible()
    ids = ben.message_ids()
    assert ids == list(range(ids[0], 304)), ids
    assert "around" not in ben.page.url

    # A permalink to a deleted or unknown message says so and opens where it would be.
    ben.goto(f"/rooms/{room}/?around=100000")
    expect(ben.page.locator("#history-status")).to_contain_text("deleted, or never was")
    assert not ben.page_errors and not ann.page_errors
