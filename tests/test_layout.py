"""The code's layers: no module of chat/ imports from a layer above its own.

From the bottom up (README.md, Map):

0. the contract: `chat.protocol`, `chat.errors` (the wire and its error codes);
1. `chat.platform`: the frameworks' internals (the layer, the wire, the database hop,
   the socket base, the server patch, Redis);
2. `chat.models`;
3. the rules: `chat.domain`, `chat.files`;
4. `chat.actions`: every change, and what it tells open sockets;
5. the edges: `chat.sockets`, `chat.notes`, `chat.search`, `chat.web`;
6. the wiring: `chat.apps`, `chat.admin`, `chat.management`, the migrations.

A module may import from its own layer and any below. Read from the source (imports
inside functions too), so a lazy import cannot hide a loop between layers. Pure: no
database, no Redis.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAT = ROOT / "chat"

LAYERS: dict[str, int] = {
    "chat.protocol": 0,
    "chat.errors": 0,
    "chat.platform": 1,
    "chat.models": 2,
    "chat.domain": 3,
    "chat.files": 3,
    "chat.actions": 4,
    "chat.sockets": 5,
    "chat.notes": 5,
    "chat.search": 5,
    "chat.web": 5,
    "chat.apps": 6,
    "chat.admin": 6,
    "chat.management": 6,
    "chat.migrations": 6,
}


def layer_of(module: str) -> int:
    """The layer of a dotted module name: its longest prefix in LAYERS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        layer = LAYERS.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    raise KeyError(f"{module} is in no layer: add its package to LAYERS (and the README's map)")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def chat_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a chat module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "chat":
                found += [(node.lineno, f"chat.{alias.name}") for alias in node.names]
            elif node.module.startswith("chat."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name) for alias in node.names if alias.name.startswith("chat.")
            ]
    return found


SOURCES = sorted(path for path in CHAT.rglob("*.py"))


def test_every_module_is_in_a_layer():
    assert CHAT / "sockets" / "room.py" in SOURCES
    for path in SOURCES:
        if path.parent == CHAT and path.name == "__init__.py":
            continue
        layer_of(module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_imports_from_a_layer_above_its_own(path):
    if path.parent == CHAT and path.name == "__init__.py":
        return
    own = layer_of(module_name(path))
    above = [
        f"{path.relative_to(ROOT)}:{line} imports {module} (layer {layer_of(module)} > {own})"
        for line, module in chat_imports(path)
        if layer_of(module) > own
    ]
    assert above == []


def test_the_rule_catches_an_import_from_above(tmp_path):
    """The check itself: a platform module importing a socket module is caught."""
    source = tmp_path / "chat" / "platform" / "bad.py"
    source.parent.mkdir(parents=True)
    source.write_text("from chat.sockets.feeds import feed_hub\nfrom chat import models\n")
    imports = chat_imports(source)
    assert imports == [(1, "chat.sockets.feeds"), (2, "chat.models")]
    assert [layer_of(module) > layer_of("chat.platform.bad") for _, module in imports] == [
        True,
        True,
    ]
