"""The page's copy of Yjs (static/chat/vendor/, made by deploy/vendor_yjs.py) is whole.

Every module it imports is there under a relative path (the page has no import
map and a browser cannot resolve a package name), each package carries its
licence, and the versions on disk are the pinned ones.
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "chat" / "vendor"
NOTES = ROOT / "static" / "chat" / "notes"
IMPORT = re.compile(
    r"""^\s*(?:(?:import|export)\b[^'"\n]*\bfrom|import)\s*['"](?P<spec>[^'"]+)['"]""", re.MULTILINE
)


def _pins() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("vendor_yjs", ROOT / "deploy" / "vendor_yjs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.PINS)


def _modules() -> list[Path]:
    return sorted([*VENDOR.rglob("*.js"), *NOTES.rglob("*.js")])


def test_every_import_is_relative_and_present() -> None:
    modules = _modules()
    assert len(modules) > 30
    for path in modules:
        for match in IMPORT.finditer(path.read_text(encoding="utf-8")):
            spec = match.group("spec")
            assert spec.startswith(("./", "../")), f"{path}: {spec!r} is not a relative path"
            target = Path(posixpath.normpath(posixpath.join(path.parent.as_posix(), spec)))
            assert target.is_file(), f"{path}: {spec!r} is missing"


def test_no_source_map_is_named() -> None:
    """The maps are not vendored: a named one would fail collectstatic's manifest."""
    for path in VENDOR.rglob("*.js"):
        assert "sourceMappingURL" not in path.read_text(encoding="utf-8"), path


def test_licences_and_pinned_versions() -> None:
    pins = _pins()
    assert set(pins) == {"yjs", "lib0", "y-protocols"}
    for name in pins:
        assert "MIT" in (VENDOR / name / "LICENSE").read_text(), name
    versions = dict(line.split()[:2] for line in (VENDOR / "VERSIONS").read_text().splitlines())
    assert versions == pins
    for version in pins.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pins are exact versions"
