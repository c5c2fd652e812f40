"""A broadcast room's live view in Chromium: watched without signing in, on two workers.

The score is set and a message published over HTTP with a bot's key; a
signed-in viewer's live comment flies across everyone's stage.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import DESKTOP, fresh_username
from tests.integration.conftest import base_env, manage

pytestmark = pytest.mark.browser


def http(method: str, url: str, body: Any, key: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_a_live_stage_shows_state_messages_and_comments_to_anyone(
    two_workers, database_url, stage, open_person, artifacts
):
    slug = stage
    key = manage(base_env(database_url), "chat_bot_key", "scorebot", "--room", slug).strip()
    first, second = (worker.url for worker in two_workers.workers)

    # Someone who is not signed in watches on one worker; a member on the other.
    guest = open_person(first, DESKTOP)
    guest.goto(f"/rooms/{slug}/live/")
    expect(guest.page.locator("#connection")).to_have_attribute("data-state", "online")
    expect(guest.page.locator("#comment-form")).to_have_count(0)
    expect(guest.page.locator(".room-notice")).to_contain_text("Log in to comment")
    fan = open_person(second, DESKTOP)
    fan.signup(fresh_username("fan"))
    fan.goto(f"/rooms/{slug}/live/")
    expect(fan.page.locator("#connection")).to_have_attribute("data-state", "online")

    assert http("PUT", f"{first}/api/rooms/{slug}/state/", {"home": 1, "away": 0}, key) == 200
    assert http("POST", f"{second}/api/rooms/{slug}/messages/", {"body": "Goal! 1-0"}, key) == 201
    for person in (guest, fan):
        expect(person.page.locator("#room-state dt")).to_have_text(["home", "away"])
        expect(person.page.locator("#room-state dd")).to_have_text(["1", "0"])
        expect(person.page.locator("#stage-latest")).to_have_text("scorebot: Goal! 1-0")

    fan.page.locator("#comment-body").fill("what a strike")
    fan.page.locator("#comment-body").press("Enter")
    for person in (guest, fan):
        expect(person.page.locator("#comment-log li")).to_have_text(
            [f"{fan.username}: what a strike"]
        )
    guest.page.screenshot(path=artifacts / "live-desktop.png")
    # Live comments are never kept: the room's history holds the published message alone.
    with psycopg.connect(database_url) as connection:
        bodies = connection.execute(
            "SELECT body FROM chat_message m JOIN chat_room r ON r.id = m.room_id"
            " WHERE r.slug = %s",
            (slug,),
        ).fetchall()
    assert bodies == [("Goal! 1-0",)]
    for person in (guest, fan):
        assert person.page_errors == [] and person.dialogs == []
