"""chat.protocol: the close codes, defined once and used by name everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

from chat.protocol import CloseCode, close_codes

ROOT = Path(__file__).resolve().parent.parent


def test_every_close_code_is_one_daphne_can_send():
    # autobahn refuses any other code from the application: it raises inside
    # daphne ("Exception inside application") and the client learns nothing.
    for code in CloseCode:
        assert code == 1000 or 3000 <= code <= 4999, code


def test_the_page_gets_every_close_code_by_name():
    assert close_codes() == {code.name: int(code) for code in CloseCode}
    assert close_codes()["INTERNAL_ERROR"] == 4011


def close_code_literals(path: Path) -> list[tuple[int, int]]:
    """(line, value) of every whole-number literal that could be a close code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) is int
        # 1000 is the one standard code daphne sends, and a common number.
        and (1001 <= node.value <= 1015 or 4000 <= node.value <= 4999)
    )


def test_no_close_code_is_written_as_a_bare_number_in_the_server():
    sources = [
        path
        for path in sorted((ROOT / "chat").rglob("*.py")) + sorted((ROOT / "chatsite").glob("*.py"))
        # chat_settings.py holds limits, such as the body's 4000 characters.
        if "migrations" not in path.parts and path.name not in {"protocol.py", "chat_settings.py"}
    ]
    assert ROOT / "chat" / "sockets" / "room.py" in sources
    found = [
        f"{path.relative_to(ROOT)}:{line}: {value}"
        for path in sources
        for line, value in close_code_literals(path)
    ]
    assert found == []


def test_the_literal_scan_sees_a_bare_code(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("async def f(self):\n    await self.close(code=1011)\n    x = 4404\n")
    assert close_code_literals(sample) == [(2, 1011), (3, 4404)]
