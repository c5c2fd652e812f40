"""The conversation tools in a real Chromium: two people, their sockets on two workers.

Edit, delete, reply, react, format, mention; a mention notifies while the tab
is hidden, and the other person's lobby counts change live with nothing polling.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import Person, choose, fresh_username, open_menu

pytestmark = pytest.mark.browser

# Stands in for the browser's notifications, which a headless Chromium cannot
# show: records what the page shows and whether it asked for permission, and
# lets the test say the tab is hidden.
NOTIFICATIONS = """
window.__shown = [];
window.__asked = 0;
window.__hidden = false;
class RecordedNotification {
  constructor(title, options) { window.__shown.push({ title: title, body: options.body }); }
  addEventListener() {}
  close() {}
  static requestPermission() {
    window.__asked += 1;
    RecordedNotification.permission = "granted";
    return Promise.resolve("granted");
  }
}
RecordedNotification.permission = "default";
window.Notification = RecordedNotification;
Object.defineProperty(Document.prototype, "visibilityState", {
  get() { return window.__hidden ? "hidden" : "visible"; },
});
"""


def message_body(person: Person, number: int):
    return person.message(number).locator(".body")


def test_edit_delete_reply_react_mention_and_notify_across_two_workers(
    two_workers, room, open_person
):
    ann = open_person(two_workers.workers[0].url)
    ben = open_person(two_workers.workers[1].url)
    ben.context.add_init_script(NOTIFICATIONS)
    ann.signup(fresh_username("ann"))
    ben.signup(fresh_username("ben"))
    ann.open_room(room)
    ben.open_room(room)

    # Light formatting and links, built as elements; the stored body is as sent.
    ann.send("Hello **Ben**, see https://example.com/docs.")
    body = message_body(ben, 1)
    expect(body.locator("strong")).to_have_text("Ben")
    link = body.locator("a")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(body).to_have_text("Hello Ben, see https://example.com/docs.")

    # Ben replies from the message's menu, reached with the keyboard.
    open_menu(ben, 1)
    choose(ben, "reply")
    expect(ben.page.locator("#reply-bar")).to_contain_text(f"Replying to {ann.username}")
    ben.send("Got it")
    quote = ann.message(2).locator(".reply-quote")
    expect(quote).to_contain_text(ann.username)
    expect(quote).to_contain_text("Hello Ben, see https://example.com/docs.")  # formatted
    expect(ben.page.locator("#reply-bar")).to_be_hidden()

    # Ann reacts; Ben adds the same: one chip, counted, pressed for each of them.
    open_menu(ann, 2)
    choose(ann, "react")
    ann.page.locator('#emoji-picker .emoji-choice[data-emoji="👍"]').click()
    chip = ben.message(2).locator('.reaction[data-emoji="👍"]')
    expect(chip.locator(".reaction-count")).to_have_text("1")
    expect(chip).to_have_attribute("aria-pressed", "false")
    chip.click()
    expect(ann.message(2).locator('.reaction[data-emoji="👍"] .reaction-count')).to_have_text("2")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).to_have_attribute("title", f"{ann.username}, {ben.username}")
    # Any single emoji, typed in.
    open_menu(ben, 2)
    choose(ben, "react")
    ben.page.locator("#emoji-input").fill("🦄")
    ben.page.locator("#emoji-input").press("Enter")
    expect(ann.message(2).locator('.reaction[data-emoji="🦄"]')).to_have_count(1)

    # Ann edits her last message with ↑ in the empty composer.
    composer = ann.page.locator("textarea#body")
    composer.focus()
    composer.press("ArrowUp")
    edit_box = ann.message(1).locator(".edit-box")
    expect(edit_box).to_be_focused()
    edit_box.fill("Hello **Ben**, the docs moved.")
    edit_box.press("Enter")
    expect(message_body(ben, 1)).to_have_text("Hello Ben, the docs moved.")
    expect(ben.message(1).locator(".edited")).to_have_text("(edited)")

    # Ben deletes his reply: a tombstone for both, asked twice in place, no dialog.
    open_menu(ben, 2)
    choose(ben, "delete")
    expect(ben.page.locator('#message-menu [data-action="delete"]')).to_have_text(
        "Delete for everyone?"
    )
    choose(ben, "delete")
    for person in (ann, ben):
        expect(person.message(2)).to_have_class(re.compile(r"\bdeleted\b"))
        expect(message_body(person, 2)).to_have_text("This message was deleted.")
        expect(person.message(2).locator(".reaction")).to_have_count(0)

    # Ben turns notifications on (asked only on his click) and goes to the lobby.
    requests: list[str] = []
    ben.page.on("request", lambda request: requests.append(request.url))
    assert ben.page.evaluate("window.__asked") == 0
    ben.goto("/")
    permission = ben.page.locator("#notify-permission")
    expect(permission).to_be_visible()
    assert ben.page.evaluate("window.__asked") == 0
    permission.click()
    expect(permission).to_be_hidden()
    assert ben.page.evaluate("window.__asked") == 1
    ben.page.evaluate("window.__hidden = true")
    # A public room he has not joined: under "Browse rooms", counted all the same.
    item = ben.page.locator(f'.lobby li.room-item[data-slug="{room}"]')
    expect(item).to_have_count(1)
    expect(item.locator(".unread")).to_have_count(0)
    # The tab title counts unread messages of every room (other tests' rooms too).
    title = ben.page.title()
    unread_before = int(title[1 : title.index(")")]) if title.startswith("(") else 0

    # Ann mentions him, completing his name from the room's members.
    composer.press_sequentially("@" + ben.username[:4])
    option = ann.page.locator("#mention-list [role=option]", has_text=ben.username)
    expect(option).to_be_visible()
    composer.press("Enter")
    expect(composer).to_have_value(f"@{ben.username} ")
    composer.press_sequentially("you're up")
    composer.press("Enter")
    expect(ann.message(3).locator(".mention")).to_have_text(f"@{ben.username}")

    # Live in his lobby: unread and the mention, with no polling.
    expect(item.locator(".unread")).to_have_text("1")
    expect(item.locator(".mentions")).to_have_text("@1")
    expect(ben.page).to_have_title(re.compile(rf"^\({unread_before + 1}\) "))
    ben.page.wait_for_function("window.__shown.length === 1")
    shown = ben.page.evaluate("window.__shown[0]")
    assert shown["title"].startswith(ann.username) and room in shown["title"]
    assert shown["body"] == f"@{ben.username} you're up"
    assert not [url for url in requests if "/api/rooms/" in url and "/members/" not in url]
    assert ann.dialogs == [] and ben.dialogs == []
    assert ann.page_errors == [] and ben.page_errors == []
