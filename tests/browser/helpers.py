"""The people, pages and checks the browser tests share."""

from __future__ import annotations

import base64
import io
import itertools
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from PIL import Image
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.integration.conftest import Worker

# Debian's Chromium; Playwright drives it and never downloads a browser of its own.
CHROMIUM = "/usr/bin/chromium"
# Headless, and quiet: without the background-networking flags Chromium keeps
# calling home, which on a closed network only adds noise and delay.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "browser-Pass-2026"
# Sign-ups are throttled per client address, and every browser here is 127.0.0.1.
WORKER_ENV = {"CHAT_SIGNUP_LIMIT": "1000/3600s", "CHAT_RATE_LIMIT": "1000/10s"}


@dataclass
class Person:
    """One person: a browser context of their own (own cookies), talking to one worker."""

    context: BrowserContext
    base_url: str
    page: Page
    username: str = ""
    # What would show that a message body ran as code, or that the page broke.
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def signup(self, username: str) -> None:
        """Sign up through the real form; the new user lands logged in on the lobby."""
        self.goto("/accounts/signup/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password1]", PASSWORD)
        self.page.fill("input[name=password2]", PASSWORD)
        self.page.locator("form[action='/accounts/signup/'] button[type=submit]").click()
        self.page.wait_for_url(self.base_url + "/")
        self.username = username

    def open_room(self, slug: str) -> None:
        """Open a room's page and wait until its socket is up."""
        self.goto(f"/rooms/{slug}/")
        expect(self.page.locator("#connection")).to_have_attribute("data-state", "online")

    def send(self, body: str) -> None:
        """Type a message and press Enter, as a person would."""
        self.page.locator("textarea#body").fill(body)
        self.page.locator("textarea#body").press("Enter")

    def messages(self) -> Locator:
        return self.page.locator("#messages li.message")

    def message(self, number: int) -> Locator:
        return self.page.locator(f"#messages li.message[data-id='{number}']")

    def message_ids(self) -> list[int]:
        """The ids of the messages shown, top to bottom."""
        values = self.page.locator("#messages li.message[data-id]").evaluate_all(
            "items => items.map(item => item.dataset.id)"
        )
        return [int(value) for value in values]

    def message_bodies(self) -> list[str]:
        return self.page.locator("#messages li.message[data-id] .body").all_text_contents()

    def online_entry(self, username: str) -> Locator:
        return self.page.locator(f'#online li[data-username="{username}"]')


_serial = itertools.count()


def fresh_username(label: str) -> str:
    """A username that no other test or run has taken."""
    return f"{label}-{uuid.uuid4().hex[:6]}{next(_serial)}"


def worker_kill(worker: Worker) -> None:
    """SIGKILL: the worker's sockets die without a close frame."""
    worker.kill(signal.SIGKILL)


def worker_restart(worker: Worker) -> None:
    """Start a dead worker again on the same port, as supervisord's autorestart would."""
    assert worker.process is not None and worker.process.poll() is not None, "still running"
    worker.start()


def stored_messages(database_url: str, slug: str) -> list[tuple[int, str]]:
    """The room's messages as PostgreSQL holds them: (id, body), in id order."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT m.number, m.body FROM chat_message m JOIN chat_room r ON r.id = m.room_id"
            " WHERE r.slug = %s AND m.deleted_at IS NULL ORDER BY m.number",
            (slug,),
        ).fetchall()
    return [(int(number), str(body)) for number, body in rows]


def open_menu(person: Person, number: int) -> None:
    """Open a message's actions from the keyboard: Tab to its button, then Enter."""
    button = person.message(number).locator(".message-actions")
    button.focus()
    button.press("Enter")
    expect(person.page.locator("#message-menu")).to_be_visible()


def choose(person: Person, action: str) -> None:
    person.page.locator(f'#message-menu [data-action="{action}"]').click()


def messages_insert(database_url: str, slug: str, username: str, count: int) -> None:
    """`count` messages by `username` straight into the room ("old message <id>"), numbered
    after its newest as the site numbers them: a long past, without sending it."""
    with psycopg.connect(database_url) as connection, connection.transaction():
        (room_id, newest) = connection.execute(
            "SELECT id, last_message_number FROM chat_room WHERE slug = %s FOR UPDATE", (slug,)
        ).fetchone() or (None, None)
        assert room_id is not None, slug
        connection.execute(
            "INSERT INTO chat_message (room_id, number, author_id, body, created, edited,"
            " reactions_version)"
            " SELECT %s, n, u.id, 'old message ' || n, now() - interval '1 hour', false, 0"
            " FROM generate_series(%s::bigint, %s::bigint) AS n, auth_user u WHERE u.username = %s",
            (room_id, newest + 1, newest + count, username),
        )
        connection.execute(
            "UPDATE chat_room SET last_message_number = %s WHERE id = %s",
            (newest + count, room_id),
        )


# --- files -----------------------------------------------------------------------------


def png(size: tuple[int, int], color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


# Builds a File in the page from base64 and hands it over as a person would:
# in a paste on the box, or dropped on the room.
GIVE_FILE = """
([how, name, type, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: type }));
  const options = { bubbles: true, cancelable: true };
  if (how === "paste") {
    const box = document.getElementById("body");
    box.focus();
    box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, ...options }));
  } else {
    const room = document.getElementById("room");
    for (const kind of ["dragenter", "dragover", "drop"]) {
      room.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, ...options }));
    }
  }
}
"""


def give_file(person: Person, how: str, name: str, content_type: str, data: bytes) -> None:
    encoded = base64.b64encode(data).decode()
    person.page.evaluate(GIVE_FILE, [how, name, content_type, encoded])


def uploaded(person: Person, count: int) -> None:
    """Wait until the tray shows `count` files uploaded and the message may go."""
    expect(person.page.locator("#upload-tray li.upload.done")).to_have_count(count)
    expect(person.page.locator("button#send")).to_be_enabled()


def inline_image(person: Person, number: int):
    image = person.message(number).locator(".attachments a.attachment-image img")
    expect(image).to_have_count(1)
    # Shown, not merely in the page: the browser decoded the thumbnail.
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0
    return image
