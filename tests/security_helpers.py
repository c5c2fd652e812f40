"""What the security tests (tests/test_security_*.py) share: a private and a direct
room carol is in neither of, everything that would give them away, and pages read as
elements.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser

from chat.domain.direct import direct_room_open
from chat.models import Room
from tests.conftest import Socket
from tests.helpers import send

BASE_DIR = Path(__file__).resolve().parent.parent


PRIVATE_NAME = "Project Nightjar"


PRIVATE_SLUG = "nightjar-ops"


PRIVATE_DESCRIPTION = "acquisition of Wrenfield Holdings"


PRIVATE_BODIES = ["the code is 4471-zebra", "board meets on the ninth"]


DIRECT_BODIES = ["meet me at the old pier", "bring the blue folder"]


PUBLIC_BODIES = ["hello everyone", "lunch at noon?"]


# --- fixtures and helpers ------------------------------------------------------------


@pytest.fixture
def carol(make_user) -> AbstractBaseUser:
    return make_user("carol")


@pytest.fixture
def world(alice, bob, carol, general) -> dict[str, Any]:
    """A private room (alice), a direct room (alice & bob), messages everywhere; carol in none."""
    private = Room.objects.create(
        name=PRIVATE_NAME,
        slug=PRIVATE_SLUG,
        description=PRIVATE_DESCRIPTION,
        kind=Room.Kind.PRIVATE,
    )
    private.members.add(alice)
    direct = direct_room_open(user=alice, username="bob")
    for body in PUBLIC_BODIES:
        send(general, alice, body=body)
    for body in PRIVATE_BODIES:
        send(private, alice, body=body)
    for index, body in enumerate(DIRECT_BODIES):
        send(direct, alice if index % 2 == 0 else bob, body=body)
    return {"private": private, "direct": direct}


async def first_output_is_close(sock: Socket) -> int:
    """The close code, which must be the socket's first output: no frame comes before it."""
    output = await sock.output(3)
    assert output["type"] == "websocket.close", output
    return int(output["code"])


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Page(HTMLParser):
    """An HTML page as elements: (tag, attributes, text content), in document order."""

    def __init__(self, content: bytes | str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.open: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.feed(content.decode() if isinstance(content, bytes) else content)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = (tag, dict(attrs), [])
        self.elements.append(element)
        if tag not in VOID_TAGS:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        for _, _, text in self.open:
            text.append(data)

    def matching(self, tag: str, css_class: str | None) -> list[tuple[dict[str, str | None], str]]:
        """(attributes, text) of each `tag` element, of class `css_class` if given."""
        return [
            (attrs, "".join(text))
            for name, attrs, text in self.elements
            if name == tag
            and (css_class is None or css_class in (attrs.get("class") or "").split())
        ]

    def find(self, tag: str, css_class: str | None = None) -> list[dict[str, str | None]]:
        return [attrs for attrs, _ in self.matching(tag, css_class)]

    def texts(self, tag: str, css_class: str | None = None) -> list[str]:
        return [text for _, text in self.matching(tag, css_class)]

    def inline_code(self) -> list[str]:
        """Whatever would run or style the page from inside it, which the CSP forbids."""
        found = []
        for tag, attrs, text in self.elements:
            if tag == "script" and (not attrs.get("src") or "".join(text).strip()):
                found.append(f"inline <script>: {''.join(text)[:80]!r}")
            for name, value in attrs.items():
                if name.startswith("on"):
                    found.append(f"<{tag} {name}=...>")
                if name == "style":
                    found.append(f"<{tag} style=...>")
                if name in {"href", "src", "action", "formaction"} and (
                    value or ""
                ).strip().lower().startswith("javascript:"):
                    found.append(f"<{tag} {name}=javascript:...>")
        return found
