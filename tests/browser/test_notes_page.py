"""The room's shared notes in real browsers, one person on each of two daphne workers.

The page runs the vendored Yjs (static/chat/vendor/) against the notes socket
(docs/protocol.md, The notes socket): both people type into one note at once,
both pages end with the same text, and it survives both workers restarting and
the pages reloading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    DESKTOP,
    PHONE,
    Person,
    fresh_username,
    worker_kill,
    worker_restart,
)

pytestmark = pytest.mark.browser

NOTES = "textarea#notes-text"


def open_notes(person: Person) -> None:
    """Open the panel from the header and wait for the server's copy."""
    person.page.locator("#notes-toggle").click()
    expect(person.page.locator("#notes-panel")).to_be_visible()
    expect(person.page.locator("#notes-status")).not_to_have_attribute("data-state", "connecting")


def notes_value(person: Person) -> str:
    return str(person.page.locator(NOTES).input_value())


def put_caret(person: Person, index: int) -> None:
    """Focus the box with the caret at `index`, as a tap there would."""
    person.page.locator(NOTES).evaluate(
        "(box, index) => { box.focus(); box.setSelectionRange(index, index); }", index
    )


def saved(person: Person) -> None:
    status = person.page.locator("#notes-status")
    expect(status).to_have_attribute("data-state", "saved")
    expect(status).to_have_text("Saved")


def type_together(first: Person, first_text: str, second: Person, second_text: str) -> None:
    """Both type at once, a key each in turn: each key's update is still on its way
    to the other worker when the other's next key goes into the other page."""
    for index in range(max(len(first_text), len(second_text))):
        if index < len(first_text):
            first.page.keyboard.type(first_text[index])
        if index < len(second_text):
            second.page.keyboard.type(second_text[index])


def is_subsequence(part: str, whole: str) -> bool:
    letters = iter(whole)
    return all(letter in letters for letter in part)


def assert_nothing_ran(*people: Person) -> None:
    for person in people:
        assert person.dialogs == [], f"{person.username} saw a dialog: {person.dialogs}"
        assert person.page_errors == [], f"{person.username}'s page failed: {person.page_errors}"


def test_two_people_edit_one_note_across_two_workers(
    two_workers, room, open_person: Callable[..., Person], artifacts: Path
):
    # Ann at a desk on worker 1, Ben on a phone on worker 2.
    ann = open_person(two_workers.workers[0].url, DESKTOP)
    ben = open_person(two_workers.workers[1].url, PHONE)
    ann.signup(fresh_username("ann"))
    ben.signup(fresh_username("ben"))
    ann.open_room(room)
    ben.open_room(room)
    open_notes(ann)
    open_notes(ben)
    expect(ann.page.locator(NOTES)).to_have_value("")
    expect(ann.page.locator(NOTES)).to_be_editable()

    # Ann starts an agenda; it reaches Ben's page on the other worker, and is saved.
    put_caret(ann, 0)
    ann.page.keyboard.type("Agenda\n\nActions\n")
    expect(ben.page.locator(NOTES)).to_have_value("Agenda\n\nActions\n")
    saved(ann)

    # Each sees the other in the panel, and where the other's caret is.
    expect(ann.page.locator(f'#notes-editors li[data-username="{ben.username}"]')).to_be_visible()
    expect(ben.page.locator(f'#notes-editors li[data-username="{ann.username}"]')).to_be_visible()
    expect(ben.page.locator("#notes-mirror .notes-caret-name")).to_have_text(ann.username)

    # Both type at once in two places: Ann under "Agenda", Ben under "Actions". Ann's
    # letters land before Ben's caret, which moves with them; neither loses a key.
    put_caret(ann, len("Agenda"))
    put_caret(ben, len("Agenda\n\nActions\n"))
    type_together(ann, "\n- the budget", ben, "- Ben books the room")
    expected = "Agenda\n- the budget\n\nActions\n- Ben books the room"
    expect(ann.page.locator(NOTES)).to_have_value(expected)
    expect(ben.page.locator(NOTES)).to_have_value(expected)
    saved(ann)
    saved(ben)
    # The caret markers follow the text: Ann's caret is after "budget" on Ben's page.
    expect(ben.page.locator("#notes-mirror .notes-caret")).to_have_count(1)
    expect(ann.page.locator("#notes-mirror .notes-caret-name")).to_have_text(ben.username)

    # Both type at one place, the very end, at once: the two pages agree, and each
    # person's letters are all there, in the order they typed them.
    put_caret(ann, len(expected))
    put_caret(ben, len(expected))
    type_together(ann, " [ann]", ben, " {ben}")
    expect(ann.page.locator(NOTES)).to_have_value(re.compile(re.escape(expected) + r".{12}$"))
    saved(ann)
    saved(ben)
    expect(ben.page.locator(NOTES)).to_have_value(notes_value(ann))
    together = notes_value(ann)
    tail = together[len(expected) :]
    assert is_subsequence(" [ann]", tail) and is_subsequence(" {ben}", tail), tail
    assert sorted(tail) == sorted(" [ann] {ben}"), tail

    ann.page.screenshot(path=str(artifacts / "notes-desktop.png"))
    ben.page.screenshot(path=str(artifacts / "notes-phone.png"))

    # Both workers die. Ann's page says so and keeps what she types meanwhile.
    for worker in two_workers.workers:
        worker_kill(worker)
    expect(ann.page.locator("#notes-status")).to_have_attribute("data-state", "offline")
    put_caret(ann, len(together))
    ann.page.keyboard.type("\nTyped offline")
    expect(ann.page.locator("#notes-status")).to_have_text("Offline: changes kept here")
    ann.page.screenshot(path=str(artifacts / "notes-offline-desktop.png"))

    # They come back; the pages reconnect by themselves and Ann's offline edit is sent.
    for worker in two_workers.workers:
        worker_restart(worker)
    final = together + "\nTyped offline"
    saved(ann)
    expect(ben.page.locator(NOTES)).to_have_value(final)

    # Fresh pages on fresh workers: the text is the server's, from the database.
    for person in (ann, ben):
        person.page.reload()
        person.open_room(room)
        open_notes(person)
        expect(person.page.locator(NOTES)).to_have_value(final)
    assert_nothing_ran(ann, ben)


def test_a_reader_sees_the_notes_read_only(
    one_worker, stage, database_url, open_person: Callable[..., Person], artifacts: Path
):
    """A broadcast room's audience reads the notes and cannot change them."""
    writer = open_person(one_worker.workers[0].url, DESKTOP)
    reader = open_person(one_worker.workers[0].url, PHONE)
    writer.signup(fresh_username("staff"))
    reader.signup(fresh_username("viewer"))
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE auth_user SET is_staff = true WHERE username = %s", (writer.username,)
        )
    writer.open_room(stage)
    open_notes(writer)
    put_caret(writer, 0)
    writer.page.keyboard.type("Kick-off at 20:00")
    saved(writer)

    reader.open_room(stage)
    open_notes(reader)
    expect(reader.page.locator(NOTES)).to_have_value("Kick-off at 20:00")
    expect(reader.page.locator("#notes-status")).to_have_text("Read-only")
    expect(reader.page.locator(NOTES)).not_to_be_editable()
    reader.page.screenshot(path=str(artifacts / "notes-read-only-phone.png"))

    # The writer's edits still reach the reader.
    put_caret(writer, len("Kick-off at 20:00"))
    writer.page.keyboard.type(", doors at 19:30")
    expect(reader.page.locator(NOTES)).to_have_value("Kick-off at 20:00, doors at 19:30")
    assert_nothing_ran(writer, reader)
