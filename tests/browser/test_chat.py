"""Two people in two real browsers, their sockets on two different daphne workers."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    DESKTOP,
    PHONE,
    WORKER_ENV,
    Person,
    choose,
    fresh_username,
    open_menu,
    stored_messages,
    worker_kill,
    worker_restart,
)

pytestmark = pytest.mark.browser


def last_message(person: Person):
    return person.messages().last


def assert_shows_exactly(person: Person, rows: list[tuple[int, str]]) -> None:
    """The page shows the stored messages, each once, in id order, none left pending."""
    expect(person.page.locator("#messages li.message.pending")).to_have_count(0)
    expect(person.messages()).to_have_count(len(rows))
    assert person.message_ids() == [number for number, _ in rows]
    assert person.message_bodies() == [body for _, body in rows]


def assert_nothing_ran(*people: Person) -> None:
    for person in people:
        assert person.dialogs == [], f"{person.username} saw a dialog: {person.dialogs}"
        assert person.page_errors == [], f"{person.username}'s page failed: {person.page_errors}"


def test_two_people_chat_across_two_workers(two_workers, room, database_url, ann_and_ben):
    ann, ben = ann_and_ben(two_workers)
    ann.open_room(room)
    ben.open_room(room)

    # Presence crosses workers: each sees the other, with a way to talk directly.
    expect(ann.online_entry(ben.username)).to_be_visible()
    expect(ben.online_entry(ann.username)).to_be_visible()
    expect(ann.online_entry(ben.username).locator("a.dm-link")).to_have_attribute(
        "href", f"/dm/{ben.username}/"
    )

    # Typing shows on the other worker before the message is sent.
    ann.page.locator("textarea#body").press_sequentially("Hello from worker 0")
    expect(ben.page.locator("#typing")).to_have_text(f"{ann.username} is typing…")
    ann.page.locator("textarea#body").press("Enter")
    expect(last_message(ben).locator(".body")).to_have_text("Hello from worker 0")
    expect(last_message(ben).locator(".author")).to_have_text(ann.username)
    expect(last_message(ben).locator("time[datetime]")).to_have_count(1)
    expect(last_message(ann)).to_have_class(re.compile(r"\bmine\b"))
    expect(last_message(ann)).to_have_attribute("data-id", "1")
    expect(ann.page.locator("textarea#body")).to_have_value("")

    # The other way, with the Send button: Shift+Enter is a new line, not a send.
    composer = ben.page.locator("textarea#body")
    composer.press_sequentially("Hi Ann")
    expect(ann.page.locator("#typing")).to_have_text(f"{ben.username} is typing…")
    composer.press("Shift+Enter")
    composer.press_sequentially("second line")
    expect(ben.messages()).to_have_count(1)
    ben.page.locator("button#send").click()
    expect(ann.message(2)).to_have_count(1)
    assert last_message(ann).locator(".body").text_content() == "Hi Ann\nsecond line"
    expect(last_message(ann)).not_to_have_class(re.compile(r"\bmine\b"))
    expect(last_message(ben)).to_have_class(re.compile(r"\bmine\b"))

    # A body is text: markup shows as typed and never runs.
    script = "<script>alert(1)</script>"
    ann.send(script)
    expect(ben.message(3).locator(".body")).to_have_count(1)
    assert last_message(ben).locator(".body").text_content() == script
    expect(ben.page.locator("#messages script")).to_have_count(0)

    rows = stored_messages(database_url, room)
    assert [body for _, body in rows] == ["Hello from worker 0", "Hi Ann\nsecond line", script]
    assert_shows_exactly(ann, rows)
    assert_shows_exactly(ben, rows)

    # A reload brings the same history back from the server, markup still as text.
    for person in (ann, ben):
        person.page.reload()
        expect(person.page.locator("#connection")).to_have_attribute("data-state", "online")
        assert_shows_exactly(person, rows)
    expect(ann.page.locator("#messages li.message.mine")).to_have_count(2)
    expect(ben.page.locator("#messages li.message.mine")).to_have_count(1)
    expect(ben.page.locator("#messages script")).to_have_count(0)

    # Ben opens a direct conversation from the online list; Ann sees him leave the room.
    ben.online_entry(ann.username).locator("a.dm-link").click()
    ben.page.wait_for_url(re.compile(r"/rooms/[a-z0-9-]+/$"))
    expect(ben.page.locator("#connection")).to_have_attribute("data-state", "online")
    direct = ben.page.locator("#room").get_attribute("data-slug")
    assert direct and direct != room
    expect(ann.online_entry(ben.username)).to_have_count(0)
    ben.send("Just between us")
    expect(last_message(ben)).to_have_attribute("data-id", "1")

    # Ann finds the same conversation, with the message in it.
    ann.goto(f"/dm/{ben.username}/")
    expect(ann.page.locator("#room")).to_have_attribute("data-slug", direct)
    expect(last_message(ann).locator(".body")).to_have_text("Just between us")
    expect(last_message(ann).locator(".author")).to_have_text(ben.username)
    assert stored_messages(database_url, direct) == [(1, "Just between us")]
    assert_nothing_ran(ann, ben)


def test_a_killed_worker_loses_and_doubles_nothing(two_workers, room, database_url, open_person):
    survivor, doomed = two_workers.workers
    ann = open_person(survivor.url)
    ben = open_person(doomed.url)
    ann.signup(fresh_username("ann"))
    ben.signup(fresh_username("ben"))
    ann.open_room(room)
    ben.open_room(room)
    ann.send("before 1")
    expect(ben.message(1)).to_have_count(1)
    ben.send("before 2")
    expect(ann.message(2)).to_have_count(1)

    # Ann keeps talking; Ben's worker dies in the middle of it.
    for index in range(6):
        ann.send(f"flow {index}")
        if index == 2:
            worker_kill(doomed)
    banner = ben.page.locator("#connection")
    expect(banner).to_have_attribute("data-state", "reconnecting")
    expect(banner).to_have_text("Reconnecting…")

    # Ben writes while his worker is down: the message waits, shown as pending.
    ben.send("sent while down")
    pending = ben.page.locator("#messages li.message.pending")
    expect(pending).to_have_count(1)
    expect(pending.locator(".body")).to_have_text("sent while down")
    assert pending.get_attribute("data-id") is None
    expect(ann.message(8)).to_have_count(1)
    expect(ann.messages()).to_have_count(8)

    # The worker comes back on the same port; Ben's page resumes by itself.
    worker_restart(doomed)
    expect(banner).to_have_text("Back online")
    expect(banner).to_have_attribute("data-state", "online")
    expect(pending).to_have_count(0)
    mine = ben.page.locator("#messages li.message.mine", has_text="sent while down")
    expect(mine).to_have_attribute("data-id", "9")
    expect(ann.message(9).locator(".body")).to_have_text("sent while down")

    # Both ways again; by then any replayed or resent copy would have landed.
    ben.send("after restart")
    expect(ann.message(10)).to_have_count(1)
    ann.send("welcome back")
    expect(ben.message(11)).to_have_count(1)

    rows = stored_messages(database_url, room)
    assert [number for number, _ in rows] == list(range(1, 12))
    assert [body for _, body in rows].count("sent while down") == 1
    assert_shows_exactly(ann, rows)
    assert_shows_exactly(ben, rows)
    assert_nothing_ran(ann, ben)


def test_two_people_chat_on_make_run_as_it_starts(make_run, open_person):
    """The newcomer's path: `make run` with nothing set (SQLite, 2 workers on one port)."""
    ann = open_person(make_run.url)
    ben = open_person(make_run.url)
    ann.signup(fresh_username("ann"))
    ben.signup(fresh_username("ben"))
    ann.open_room("general")
    ben.open_room("general")
    expect(ann.online_entry(ben.username)).to_be_visible()
    expect(ben.online_entry(ann.username)).to_be_visible()

    ann.send("Hello from the browser")
    expect(last_message(ben).locator(".body")).to_have_text("Hello from the browser")
    expect(last_message(ann)).to_have_class(re.compile(r"\bmine\b"))
    ben.send("Hello back")
    expect(last_message(ann).locator(".body")).to_have_text("Hello back")
    expect(last_message(ann).locator(".author")).to_have_text(ben.username)
    for person in (ann, ben):
        expect(person.page.locator("#messages li.message.pending")).to_have_count(0)
    stored = make_run.query(
        "SELECT m.body FROM chat_message m JOIN chat_room r ON r.id = m.room_id"
        " WHERE r.slug = 'general' ORDER BY m.number DESC LIMIT 2"
    )
    assert stored == [("Hello back",), ("Hello from the browser",)]
    assert_nothing_ran(ann, ben)
    assert make_run.problems() == [], "\n".join(make_run.problems())


def test_the_page_reconnects_after_a_fault_of_the_server(cluster_factory, room, open_person):
    """4011: the server failed serving the socket; the page reconnects, resumes and goes on."""
    cluster = cluster_factory(
        1, application="tests.integration.faulty_asgi:application", **WORKER_ENV
    )
    ann = open_person(cluster.workers[0].url)
    ann.signup(fresh_username("ann"))
    ann.open_room(room)
    ann.send("before the fault")
    expect(ann.message(1)).to_have_count(1)

    # Typing sends `typing`, which this worker fails on, once.
    ann.page.locator("textarea#body").press_sequentially("after")
    banner = ann.page.locator("#connection")
    expect(banner).to_have_text("Back online")
    expect(banner).to_have_attribute("data-state", "online")
    assert "closing the socket with 4011" in cluster.workers[0].log()
    ann.page.locator("textarea#body").press("Enter")
    expect(ann.message(2).locator(".body")).to_have_text("after")
    expect(ann.page.locator("#messages li.message.pending")).to_have_count(0)
    assert ann.message_ids() == [1, 2]
    assert_nothing_ran(ann)


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_lobby_and_room_screenshots(one_worker, room, database_url, open_person, artifacts):
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE chat_room SET name = 'Release train', description = %s WHERE slug = %s",
            ("Builds, deploys and who is on call.", room),
        )
    ann = open_person(one_worker.workers[0].url, DESKTOP)
    ann.signup(fresh_username("ann"))
    ann.open_room(room)
    ben = open_person(one_worker.workers[0].url, DESKTOP)
    ben.signup(fresh_username("ben"))
    ben.open_room(room)
    # A short conversation: both sides, grouped runs, someone else online.
    # A short conversation: both sides, grouped runs, a reply, a mention,
    # formatting, reactions, someone else online.
    conversation = [
        (ann, "Good morning! Is the build **green**?", None),
        (ben, "It is: all 1,200 tests passed on `main`.", 1),
        (
            ben,
            "Shipping at noon unless someone shouts. Notes: https://example.com/releases/42",
            None,
        ),
        (ann, f"@{ben.username} great, I'll tell support.", None),
        (ann, "<script>alert('not today')</script> stays text, by the way.", None),
    ]
    for number, (person, body, reply_to) in enumerate(conversation, start=1):
        if reply_to:
            open_menu(person, reply_to)
            choose(person, "reply")
        person.send(body)
        expect(ann.message(number)).to_have_count(1)
    for person, number, emoji in ((ann, 3, "🎉"), (ben, 4, "👍"), (ben, 3, "🎉")):
        open_menu(person, number)
        choose(person, "react")
        person.page.locator(f'#emoji-picker .emoji-choice[data-emoji="{emoji}"]').click()
    expect(ann.message(3).locator(".reaction-count")).to_have_text("2")
    expect(ann.message(4).locator(".reaction")).to_have_count(1)
    phone = open_person(one_worker.workers[0].url, PHONE)
    phone.context.add_cookies(ann.context.cookies())
    phone.username = ann.username

    shots = []
    for person, width in ((ann, "desktop"), (phone, "phone")):
        person.goto("/")
        item = person.page.locator(f'.lobby li.room-item[data-slug="{room}"]')
        expect(item.locator(".room-name")).to_have_text("Release train")
        expect(item.locator(".room-description")).to_have_text(
            "Builds, deploys and who is on call."
        )
        expect(item.locator(".online[data-online]")).to_have_count(1)
        shots.append(artifacts / f"lobby-{width}.png")
        person.page.screenshot(path=shots[-1])

        person.open_room(room)
        expect(person.page.locator("#messages li.message[data-id]")).to_have_count(5)
        # Nothing may push the page sideways on a narrow screen.
        scroll_width = person.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= person.page.viewport_size["width"], width
        shots.append(artifacts / f"room-{width}.png")
        person.page.screenshot(path=shots[-1])

    for shot in shots:
        viewport = PHONE if "phone" in shot.name else DESKTOP
        assert png_size(shot) == (viewport["width"], viewport["height"])
        # A blank page compresses to a few hundred bytes; a rendered one does not.
        assert shot.stat().st_size > 5_000, shot
    assert_nothing_ran(ann, ben, phone)
