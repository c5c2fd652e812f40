"""Rooms people make, in a real Chromium across two workers: the whole flow.

Ann creates a private room and makes an invite link; Ben opens it and joins;
both chat; Ann removes Ben, and Ben's open page says so at once.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import DESKTOP, PHONE

pytestmark = pytest.mark.browser


def test_create_invite_join_chat_and_remove_across_two_workers(
    two_workers, ann_and_ben, open_person, artifacts
):
    ann, ben = ann_and_ben(two_workers)
    name = f"Launch plan {uuid.uuid4().hex[:6]}"

    # Ann makes a private room from the lobby's form; she owns it.
    ann.goto("/")
    ann.page.locator("#new-room > summary").click()
    ann.page.fill("#new-room-name", name)
    ann.page.locator("input[name=kind][value=private]").check()
    ann.page.fill("#new-room-description", "Who ships what, and when.")
    ann.page.screenshot(path=artifacts / "rooms-new-room-form-desktop.png")
    ann.page.locator("#new-room-form button[type=submit]").click()
    slug = name.lower().replace(" ", "-")
    ann.page.wait_for_url(f"{ann.base_url}/rooms/{slug}/")
    expect(ann.page.locator("#connection")).to_have_attribute("data-state", "online")

    # An invite link from the room's settings, for a week and two uses.
    ann.page.locator("#settings-open").click()
    dialog = ann.page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".member[data-username]")).to_have_count(1)
    ann.page.fill("#invite-uses", "2")
    ann.page.locator("#invite-create").click()
    link = dialog.locator("#invite-list li.invite .invite-url")
    expect(link).to_have_count(1)
    url = link.input_value()
    assert "/invite/" in url
    expect(dialog.locator(".invite-meta")).to_contain_text("0 of 2 uses")
    ann.page.screenshot(path=artifacts / "rooms-settings-desktop.png")
    ann.page.locator("#settings-close").click()

    # Ben, on the other worker, opens the link and joins.
    path = url[url.index("/invite/") :]
    ben.goto(path)
    expect(ben.page.locator("#invite-title")).to_have_text(name)
    ben.page.screenshot(path=artifacts / "rooms-invite-desktop.png")
    ben.page.locator("#invite-join").click()
    ben.page.wait_for_url(f"{ben.base_url}/rooms/{slug}/")
    expect(ben.page.locator("#connection")).to_have_attribute("data-state", "online")

    # Both chat.
    ann.send("Welcome, Ben.")
    expect(ben.page.locator("#messages li.message .body")).to_have_text(["Welcome, Ben."])
    ben.send("Glad to be here.")
    expect(ann.page.locator("#messages li.message .body")).to_have_text(
        ["Welcome, Ben.", "Glad to be here."]
    )

    # Ann removes Ben: his open page says so at once, and he can write no more.
    ann.page.locator("#settings-open").click()
    member = dialog.locator(f'.member[data-username="{ben.username}"]')
    expect(member).to_have_count(1)
    member.locator(".member-remove").click()
    expect(dialog.locator(f'.member[data-username="{ben.username}"]')).to_have_count(0)
    expect(ben.page.locator("#room-notice")).to_have_text(
        "You were removed from this room.", timeout=3000
    )
    expect(ben.page.locator("#body")).to_be_disabled()
    expect(ben.page.locator("#leave-room")).to_be_hidden()
    ben.page.screenshot(path=artifacts / "rooms-removed-desktop.png")

    # The lobby: Ann's own room under "Your rooms", the public ones to browse.
    phone = open_person(two_workers.workers[1].url, PHONE)
    phone.context.add_cookies(ann.context.cookies())
    for person, width in ((ann, "desktop"), (phone, "phone")):
        person.goto("/")
        mine = person.page.locator(f'#room-list li.room-item[data-slug="{slug}"]')
        expect(mine.locator(".badge-owner")).to_have_text("owner")
        expect(person.page.locator("#browse-list")).to_be_visible()
        scroll_width = person.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= (PHONE if width == "phone" else DESKTOP)["width"]
        person.page.screenshot(path=artifacts / f"rooms-lobby-{width}.png", full_page=True)

    # Ben's lobby no longer lists the room.
    ben.goto("/")
    expect(ben.page.locator(f'li.room-item[data-slug="{slug}"]')).to_have_count(0)
    for person in (ann, ben, phone):
        assert person.page_errors == []
