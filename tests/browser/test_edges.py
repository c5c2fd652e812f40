"""The composer's refusals before one types, and the rough edges of the pages, in a real
Chromium against real workers: geometry is measured from the browser's own boxes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    DESKTOP,
    PHONE,
    WORKER_ENV,
    Person,
    fresh_username,
    give_file,
    inline_image,
    png,
    uploaded,
)
from tests.integration.conftest import manage

pytestmark = pytest.mark.browser


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, locator
    return dict(found)


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def shell(cluster: Any, code: str) -> None:
    """Django code run as an operator would (`manage.py shell`), on the cluster's layer:
    its events reach the workers' sockets."""
    manage(cluster.workers[0].env, "shell", "-c", code)


def test_a_rate_limited_send_says_so_and_every_message_arrives_in_order(
    cluster_factory, room, open_person, artifacts: Path
):
    cluster = cluster_factory(1, **{**WORKER_ENV, "CHAT_RATE_LIMIT": "3/5s"})
    ann = open_person(cluster.workers[0].url)
    ann.signup(fresh_username("ann"))
    ann.open_room(room)
    for number in range(1, 8):
        ann.send(f"quick {number}")
    error = ann.page.locator("#send-error")
    expect(error).to_have_text(re.compile(r"too fast\. Sending again in [1-5] s\."))
    # The messages still waiting say it too, not a silent "Sending…".
    waiting = ann.page.locator("#messages li.message.pending .delivery")
    expect(waiting.first).to_have_text(re.compile(r"Waiting [1-5] s: sending too fast"))
    ann.page.screenshot(path=str(artifacts / "composer-rate-limited-desktop.png"))
    # All arrive, in the order written, one at a time: the socket is never closed for
    # flooding (ten refusals in a row would close it for 30 s).
    expect(ann.page.locator("#messages li.message[data-id]")).to_have_count(7, timeout=30_000)
    assert ann.message_bodies() == [f"quick {number}" for number in range(1, 8)]
    expect(error).to_have_text("")
    expect(ann.page.locator("#connection")).not_to_have_text("Reconnecting…")
    assert ann.page_errors == []


def test_a_muted_person_sees_the_mute_before_typing_and_live(
    cluster_factory, room, open_person, artifacts: Path
):
    cluster = cluster_factory(2, **WORKER_ENV)
    ann = open_person(cluster.workers[0].url)
    ann.signup(fresh_username("ann"))
    # Muted everywhere until a set time, before the page opens.
    shell(
        cluster,
        "from datetime import datetime, timezone\n"
        "from django.contrib.auth.models import User\n"
        "from chat.models import Mute\n"
        f"Mute.objects.create(user=User.objects.get(username={ann.username!r}),"
        " until=datetime(2099, 1, 2, 15, 30, tzinfo=timezone.utc))",
    )
    ann.open_room(room)
    notice = ann.page.locator("#room-notice")
    expect(notice).to_have_text(re.compile(r"You are muted in every room until .*2099"))
    expect(ann.page.locator("textarea#body")).to_be_disabled()
    expect(ann.page.locator("button#send")).to_be_disabled()
    ann.page.screenshot(path=str(artifacts / "composer-muted-desktop.png"))

    # Lifted in the admin's way (the model's delete): the page opens up at once.
    shell(cluster, "from chat.models import Mute\nfor m in Mute.objects.all(): m.delete()")
    expect(ann.page.locator("textarea#body")).to_be_enabled()
    expect(notice).to_have_text("")
    ann.send("free to talk")
    expect(ann.message(1).locator(".body")).to_have_text("free to talk")

    # A mute of this room alone, with no end, while the page is open on the other worker.
    ben = open_person(cluster.workers[1].url, PHONE)
    ben.signup(fresh_username("ben"))
    ben.open_room(room)
    shell(
        cluster,
        "from django.contrib.auth.models import User\n"
        "from chat.models import Mute, Room\n"
        f"Mute.objects.create(user=User.objects.get(username={ben.username!r}),"
        f" room=Room.objects.get(slug={room!r}))",
    )
    expect(ben.page.locator("#room-notice")).to_have_text(
        "You are muted in this room: you can read, but not post."
    )
    expect(ben.page.locator("textarea#body")).to_be_disabled()
    ben.page.screenshot(path=str(artifacts / "composer-muted-phone.png"))
    assert ann.page_errors == [] and ben.page_errors == []


def test_long_messages_fold_and_the_edit_box_takes_the_column(
    two_workers, room, ann_and_ben, artifacts: Path
):
    ann, ben = ann_and_ben(two_workers)
    ann.open_room(room)
    ben.page.set_viewport_size(PHONE)
    ben.open_room(room)
    long_body = ("A long report, line after line. " * 125)[:3999] + "."
    ann.send(long_body)
    ann.send("ok")
    for person in (ann, ben):
        body = person.message(1).locator(".body")
        expect(body).to_have_class(re.compile(r"\bfolded\b"))
        button = person.message(1).locator("button.show-more")
        expect(button).to_have_text("Show more")
        folded = box(body)["height"]
        assert folded < 260, folded  # a few lines, not several screens
        # The whole text is there, for search in the page and for copying.
        assert len(body.text_content() or "") == 4000
        if person is ben:
            ben.page.screenshot(path=str(artifacts / "long-message-folded-phone.png"))
        button.click()
        expect(button).to_have_text("Show less")
        assert box(body)["height"] > 3 * folded
        button.click()
        expect(body).to_have_class(re.compile(r"\bfolded\b"))
    short = ann.message(2).locator(".body")
    assert "folded" not in (short.get_attribute("class") or "")
    expect(ann.message(2).locator("button.show-more")).to_have_count(0)

    # Editing "ok" (a bubble a few dozen pixels wide) happens in the column's width.
    column = box(ann.page.locator("#messages"))
    bubble = box(short)
    ann.page.locator("textarea#body").press("ArrowUp")
    edit_box = ann.page.locator("#messages li.message.editing textarea.edit-box")
    expect(edit_box).to_be_visible()
    width = box(edit_box)["width"]
    assert width > 4 * bubble["width"], (width, bubble)
    assert width >= 0.6 * column["width"] or width >= 0.95 * 42 * 16, (width, column)
    ann.page.screenshot(path=str(artifacts / "edit-width-desktop.png"))


def test_a_file_card_keeps_its_height_beside_an_image_and_popups_clear_the_text(
    cluster_factory, room, ann_and_ben, tmp_path: Path, artifacts: Path
):
    cluster = cluster_factory(2, **WORKER_ENV, DJANGO_MEDIA_ROOT=str(tmp_path / "media"))
    ann, ben = ann_and_ben(cluster)
    ann.open_room(room)
    ben.open_room(room)
    ann.page.locator("textarea#body").fill("the plan and the site")
    give_file(ann, "paste", "site.png", "image/png", png((600, 600), "teal"))
    give_file(ann, "drop", "plan.txt", "text/plain", b"step one\n" * 20)
    uploaded(ann, 2)
    ann.page.locator("textarea#body").press("Enter")
    image = inline_image(ben, 1)
    card = ben.message(1).locator("a.attachment-file")
    expect(card).to_be_visible()
    image_height = box(image)["height"]
    card_height = box(card)["height"]
    assert image_height > 150, image_height
    assert card_height < 90, (card_height, image_height)

    # The reactions tooltip, shown on hover, beside the chip and clear of the text.
    ben.page.locator("#messages li.message[data-id='1']").hover()
    ben.page.locator("#messages li.message[data-id='1'] .message-actions").click()
    ben.page.locator("#message-menu button[data-action='react']").click()
    ben.page.locator("#emoji-choices button").first.click()
    chip = ben.message(1).locator(".reaction").first
    expect(chip).to_be_visible()
    chip.hover()
    tooltip = chip.locator(".reaction-who")
    expect(tooltip).to_be_visible()
    text = box(ben.message(1).locator(".body"))
    assert not overlaps(box(tooltip), text), (box(tooltip), text)
    ben.page.screenshot(path=str(artifacts / "reaction-tooltip-desktop.png"))

    # "Copied": a line of its own above the list, over no message.
    ben.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ben.message(1).hover()
    ben.message(1).locator(".message-actions").click()
    ben.page.locator("#message-menu button[data-action='link']").click()
    toast = ben.page.locator("#history-status")
    expect(toast).to_have_text("Link to the message copied.")
    toast_box = box(toast)
    for item in ben.page.locator("#messages li.message").all():
        assert not overlaps(toast_box, box(item)), (toast_box, box(item))
    assert toast_box["y"] + toast_box["height"] <= box(ben.page.locator("#messages"))["y"] + 1
    ben.page.screenshot(path=str(artifacts / "copied-toast-desktop.png"))


def test_anonymous_viewers_find_their_way_and_the_live_prompt_stays_in_view(
    cluster_factory, stage, open_person, artifacts: Path
):
    cluster = cluster_factory(1, **WORKER_ENV)
    viewer = open_person(cluster.workers[0].url)
    viewer.open_room(stage)
    viewer.page.locator("a.back-link").click()
    viewer.page.wait_for_url(re.compile(r"/watch/$"))
    expect(viewer.page.locator(f"#room-list a[href='/rooms/{stage}/']")).to_be_visible()
    viewer.page.screenshot(path=str(artifacts / "live-rooms-anonymous-desktop.png"))

    # The live view at 1280x800: the invitation to comment is above the fold.
    viewer.goto(f"/rooms/{stage}/live/")
    expect(viewer.page.locator("#connection")).to_have_attribute("data-state", "online")
    invitation = box(viewer.page.locator(".live > .room-notice"))
    assert invitation["y"] + invitation["height"] <= DESKTOP["height"], invitation

    member: Person = open_person(cluster.workers[0].url)
    member.signup(fresh_username("cam"))
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        member.page.set_viewport_size(size)
        member.goto(f"/rooms/{stage}/live/")
        expect(member.page.locator("#connection")).to_have_attribute("data-state", "online")
        prompt = member.page.locator("#comment-body")
        expect(prompt).to_be_visible()
        found = box(prompt)
        assert found["y"] >= 0 and found["y"] + found["height"] <= size["height"], (found, size)
        stage_box = box(member.page.locator(".stage canvas"))
        assert stage_box["width"] >= min(size["width"] - 40, 900), stage_box
        member.page.screenshot(path=str(artifacts / f"live-prompt-{name}.png"))
    assert viewer.page_errors == [] and member.page_errors == []
