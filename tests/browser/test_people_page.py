"""People and error pages in a real Chromium, against real daphne workers.

Ann finds Ben, who is not online anywhere, with the lobby's picker and the
keyboard alone, and opens their conversation; Ben (on the other worker) finds
it in his lobby. Then the error pages, each in the site's layout with a way
back, the 500 one drawn while the database refuses every connection.
Screenshots of the picker and of each error page at phone and desktop widths.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import DESKTOP, PHONE, Person, fresh_username
from tests.integration.conftest import POSTGRES_URL

pytestmark = pytest.mark.browser


def status_of(person: Person, path: str) -> int:
    response = person.page.goto(person.base_url + path)
    assert response is not None
    return int(response.status)


def phone_twin(open_person, person: Person) -> Person:
    """The same signed-in person in a phone-sized window."""
    phone = open_person(person.base_url, PHONE)
    phone.context.add_cookies(person.context.cookies())
    phone.username = person.username
    return phone


def fits(person: Person) -> None:
    """Nothing pushes the page sideways."""
    width = person.page.evaluate("document.documentElement.scrollWidth")
    assert width <= person.page.viewport_size["width"]


def test_the_picker_finds_someone_offline_and_opens_the_conversation(
    two_workers, open_person, artifacts
):
    ann = open_person(two_workers.workers[0].url, DESKTOP)
    ben = open_person(two_workers.workers[1].url, DESKTOP)
    ann.signup(fresh_username("ann"))
    ben.signup(fresh_username("ben"))
    # Ben is in no room and has no page open: not online anywhere.
    ben.page.goto("about:blank")

    ann.goto("/")
    box = ann.page.get_by_role("combobox", name="Message someone")
    box.focus()
    box.press_sequentially(ben.username[:-1], delay=20)
    options = ann.page.locator("#lobby-people-options [role=option]")
    option = options.and_(ann.page.locator(f'[data-username="{ben.username}"]'))
    expect(option).to_be_visible()
    expect(option).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(ann.page.locator("#lobby-people-status")).to_contain_text("Enter opens")
    fits(ann)
    ann.page.screenshot(path=str(artifacts / "people-picker-desktop.png"))

    # Escape closes the list; the arrow key brings it back; Enter opens the conversation.
    box.press("Escape")
    expect(ann.page.locator("#lobby-people-options")).to_be_hidden()
    box.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    ann.page.wait_for_url(re.compile(r"/rooms/dm-\d+-\d+/$"))
    expect(ann.page.locator("#connection")).to_have_attribute("data-state", "online")
    slug = urlsplit(ann.page.url).path.split("/")[2]
    ann.send("Hello Ben, found you by name")
    expect(ann.messages()).to_have_count(1)

    # Ben, on the other worker, finds the conversation in his lobby and reads it.
    ben.goto("/")
    item = ben.page.locator(f'#room-list li.room-item[data-slug="{slug}"]')
    expect(item.locator(".room-name")).to_have_text(ann.username)
    ben.open_room(slug)
    expect(ben.page.locator("#messages li.message .body")).to_have_text(
        ["Hello Ben, found you by name"]
    )

    # The people page at phone width: the picker over the list of everyone.
    phone = phone_twin(open_person, ann)
    phone.goto("/people/")
    expect(phone.page.locator(f'.people-list a[href="/dm/{ben.username}/"]')).to_be_visible()
    phone_box = phone.page.get_by_role("combobox", name="Name")
    phone_box.press_sequentially(ben.username[:-1], delay=20)
    expect(
        phone.page.locator(f'#people-q-options [role=option][data-username="{ben.username}"]')
    ).to_be_visible()
    fits(phone)
    phone.page.screenshot(path=str(artifacts / "people-picker-phone.png"))
    # A click opens the conversation too: the same room.
    phone.page.locator(f'#people-q-options [data-username="{ben.username}"]').click()
    phone.page.wait_for_url(re.compile(f"/rooms/{slug}/$"))

    assert not ann.page_errors and not phone.page_errors and not ben.page_errors


@contextmanager
def database_closed(database_url: str):
    """Every new connection to the test's database refused, as with a database that is down."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_error_pages_in_the_sites_layout(one_worker, room, database_url, open_person, artifacts):
    ann = open_person(one_worker.workers[0].url, DESKTOP)
    ann.signup(fresh_username("ann"))
    phone = phone_twin(open_person, ann)
    pages = [
        ("missing-room", "/rooms/no-such-room/", 404, "There is no room at this address"),
        ("yourself", f"/dm/{ann.username}/", 404, "You cannot open a conversation with yourself"),
        ("unknown-person", "/dm/nobody-by-this-name/", 404, "There is nobody called"),
        ("bad-permalink", f"/rooms/{room}/?around=abc", 404, "This link names no message"),
        ("no-such-page", "/no/such/page/", 404, "There is nothing at this address"),
    ]
    for person, width in ((ann, "desktop"), (phone, "phone")):
        for name, path, status, says in pages:
            assert status_of(person, path) == status, path
            card = person.page.locator(".error-page")
            expect(card).to_contain_text(says)
            expect(person.page.locator("header.topbar .whoami")).to_contain_text(ann.username)
            expect(card.locator("a.error-back")).to_be_visible()
            fits(person)
            person.page.screenshot(path=str(artifacts / f"error-{name}-{width}.png"))
        assert not person.page_errors, person.page_errors

    # The way back from the bad permalink is the room itself.
    ann.goto(f"/rooms/{room}/?around=abc")
    ann.page.locator(".error-page a.error-back").click()
    expect(ann.page.locator("#connection")).to_have_attribute("data-state", "online")

    # The JSON API keeps its JSON on the same worker.
    response = ann.page.request.get(ann.base_url + "/api/no-such-thing/")
    assert response.status == 404
    assert response.json()["error"] == "not_found"

    # The 500 page, drawn while the database refuses every connection.
    ann.page.goto("about:blank")
    with database_closed(database_url):
        for person, width in ((ann, "desktop"), (phone, "phone")):
            assert status_of(person, f"/rooms/{room}/") == 500
            card = person.page.locator(".error-page")
            expect(card).to_contain_text("Something went wrong")
            expect(card.locator("a.error-back")).to_have_attribute("href", "/")
            fits(person)
            person.page.screenshot(path=str(artifacts / f"error-500-{width}.png"))
    # And the site answers again once it is back.
    ann.open_room(room)
