"""static/chat/format.js in Chromium: a body becomes nodes and text, never HTML."""

from __future__ import annotations

import pytest

from tests.browser.helpers import fresh_username

pytestmark = pytest.mark.browser

# Renders each body with format.js and describes the result as (tag, text) pairs,
# with each link's href and rel, so the test reads what the DOM holds.
RENDER = """
async (cases) => {
  const { renderBody } = await import("/static/chat/format.js");
  return cases.map(([body, mentions]) => {
    const box = document.createElement("div");
    renderBody(box, body, mentions);
    box.normalize(); // adjacent text nodes read as one
    return {
      html: box.innerHTML,
      nodes: Array.from(box.childNodes).map((node) => [
        node.nodeType === 3 ? "#text" : node.tagName.toLowerCase(),
        node.textContent,
        node.getAttribute ? node.getAttribute("href") : null,
        node.getAttribute ? node.getAttribute("rel") : null,
      ]),
      text: box.textContent,
    };
  });
}
"""


def test_formatting_builds_nodes_from_text(one_worker, room, open_person):
    person = open_person(one_worker.workers[0].url)
    person.signup(fresh_username("fmt"))
    person.open_room(room)
    cases = [
        ["**bold** and _it_ and `x < y`", []],
        ["see https://example.com/a?b=1&c=2. then", []],
        ["javascript:alert(1) and http://x.test/<img>", []],
        ["**<img src=x onerror=alert(1)>**", []],
        ["```\n<script>alert(1)</script>\n```", []],
        ["hi @ann and @bob.", ["bob"]],
        ["snake_case_name stays", []],
    ]
    results = person.page.evaluate(RENDER, cases)
    bold, link, no_link, hostile, fence, mention, snake = results

    assert bold["nodes"] == [
        ["strong", "bold", None, None],
        ["#text", " and ", None, None],
        ["em", "it", None, None],
        ["#text", " and ", None, None],
        ["code", "x < y", None, None],
    ]
    assert link["nodes"][1] == [
        "a",
        "https://example.com/a?b=1&c=2",
        "https://example.com/a?b=1&c=2",
        "noopener noreferrer nofollow",
    ]
    assert link["text"] == "see https://example.com/a?b=1&c=2. then"
    # Only http(s) becomes a link, and a URL stops at markup characters.
    assert [node[0] for node in no_link["nodes"]] == ["#text", "a", "#text"]
    assert no_link["nodes"][1][2] == "http://x.test/"
    # Markup inside formatting is text: no element but the formatting's own.
    assert hostile["nodes"] == [["strong", "<img src=x onerror=alert(1)>", None, None]]
    assert "<img" not in hostile["html"].replace("&lt;img", "")
    assert fence["nodes"] == [["pre", "<script>alert(1)</script>", None, None]]
    assert "<script" not in fence["html"]
    # Only the members the server counted are highlighted.
    assert mention["nodes"] == [
        ["#text", "hi @ann and ", None, None],
        ["span", "@bob", None, None],
        ["#text", ".", None, None],
    ]
    assert snake["nodes"] == [["#text", "snake_case_name stays", None, None]]
    assert person.dialogs == [] and person.page_errors == []
