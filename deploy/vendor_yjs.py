#!/usr/bin/env python3
"""Refresh the page's copy of Yjs from the npm registry: static/chat/vendor/.

The notes panel (static/chat/notes/) runs Yjs in the browser as native ES
modules served by the site: nothing from a CDN, no bundler at run time. This
script fetches the pinned versions below with `npm pack` into a temporary
directory, follows the import graph from the entry points, and copies only the
modules the page reaches, with each package's LICENSE:

    static/chat/vendor/yjs/yjs.js             (yjs's dist/yjs.mjs)
    static/chat/vendor/lib0/<module>.js       (the lib0 modules yjs and y-protocols import)
    static/chat/vendor/y-protocols/{sync,awareness}.js

Bare specifiers (`lib0/encoding`, `yjs`) are rewritten to relative paths,
resolved through each package's `exports` map with the browser's conditions,
so that the page needs no import map (the CSP allows no inline script). Every
import becomes one `import … from "./x.js";` statement, the shape Django's
manifest storage recognises when it rewrites imports to hashed file names,
and source-map comments are dropped (the maps are not copied). Words in
comments that the manifest storage would take for an import are spaced out.
A check at the end fails the refresh if anything is left that the storage
would try to resolve and could not.

    python3 deploy/vendor_yjs.py          (or: make vendor-yjs)

To move to a new version, change the pins, run it, run the notes tests
(tests/test_notes_vendor.py, tests/browser/test_notes_page.py) and commit the
result with the new VERSIONS file.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Exact versions: a refresh never moves by itself.
PINS = {"yjs": "13.6.33", "lib0": "0.2.120", "y-protocols": "1.0.7"}

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "chat" / "vendor"

# Entry points: (package, file inside the package, where it goes under VENDOR/<package>/).
ENTRIES = [
    ("yjs", "dist/yjs.mjs", "yjs.js"),
    ("y-protocols", "sync.js", "sync.js"),
    ("y-protocols", "awareness.js", "awareness.js"),
]

# The browser's view of a package's `exports` map, in the order a bundler for
# the browser would try them.
CONDITIONS = ("browser", "module", "import", "default")

# A static import or re-export, one statement (the vendored sources put one per line).
STATIC_IMPORT = re.compile(
    r"""^(?P<head>(?:import|export)\b[^'"\n;]*?\bfrom\s*)['"](?P<spec>[^'"]+)['"]\s*;?[ \t]*(?://.*)?$""",
    re.MULTILINE,
)
SIDE_EFFECT_IMPORT = re.compile(
    r"""^import\s*['"](?P<spec>[^'"]+)['"]\s*;?[ \t]*(?://.*)?$""", re.MULTILINE
)
# Any import or re-export left, to check that none still names a package.
ANY_IMPORT = re.compile(
    r"""^\s*(?:(?:import|export)\b[^'"\n]*\bfrom|import)\s*['"](?P<spec>[^'"]+)['"]""", re.MULTILINE
)
SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$\n?", re.MULTILINE)
# In JSDoc, `import('./x.js').T` is a type, not code, but Django's pattern for
# dynamic imports would try to resolve it.
TYPE_IMPORT = re.compile(r"""\bimport\((['"])""")


def npm_pack(workdir: Path) -> dict[str, Path]:
    """Each pinned package unpacked under workdir; its root by name."""
    specs = [f"{name}@{version}" for name, version in PINS.items()]
    npm = shutil.which("npm")
    if not npm:
        raise SystemExit("npm is needed to fetch the packages (Debian: apt-get install npm)")
    output = subprocess.run(  # noqa: S603  (the pinned names above, no shell)
        [npm, "pack", "--json", "--silent", *specs],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    roots = {}
    for entry in json.loads(output):
        name = entry["name"]
        target = workdir / name
        with tarfile.open(workdir / entry["filename"]) as archive:
            archive.extractall(target, filter="data")
        roots[name] = target / "package"
        found = json.loads((roots[name] / "package.json").read_text())["version"]
        if found != PINS[name]:
            raise SystemExit(f"{name}: asked for {PINS[name]}, npm gave {found}")
    return roots


def pick(target: object) -> str | None:
    """The path an `exports` entry gives the browser."""
    if isinstance(target, str):
        return target
    if isinstance(target, dict):
        for condition in CONDITIONS:
            if condition in target:
                found = pick(target[condition])
                if found:
                    return found
    return None


def resolve_bare(spec: str, roots: dict[str, Path]) -> tuple[str, str]:
    """`lib0/encoding` -> ("lib0", "encoding.js"); `yjs` -> ("yjs", "dist/yjs.mjs")."""
    for name in sorted(roots, key=len, reverse=True):
        if spec == name or spec.startswith(name + "/"):
            subpath = "." + spec[len(name) :]
            exports = json.loads((roots[name] / "package.json").read_text()).get("exports", {})
            found = pick(exports.get(subpath)) if isinstance(exports, dict) else None
            if not found:
                raise SystemExit(f"cannot resolve {spec!r} through {name}'s exports")
            return name, found.removeprefix("./")
    raise SystemExit(f"{spec!r} is not one of the pinned packages {sorted(PINS)}")


def destination(package: str, source: str) -> str:
    """Where a package's file goes under VENDOR, as a path relative to VENDOR."""
    for entry_package, entry_source, entry_target in ENTRIES:
        if (package, source) == (entry_package, entry_source):
            return f"{package}/{entry_target}"
    if not source.endswith(".js"):
        raise SystemExit(f"{package}/{source}: only .js modules are vendored")
    return f"{package}/{source}"


def relative(from_file: str, to_file: str) -> str:
    """An import specifier from one vendored file to another, starting with ./ or ../."""
    from_parts = from_file.split("/")[:-1]
    to_parts = to_file.split("/")
    common = 0
    while (
        common < min(len(from_parts), len(to_parts) - 1) and from_parts[common] == to_parts[common]
    ):
        common += 1
    ups = len(from_parts) - common
    rest = "/".join(to_parts[common:])
    return ("../" * ups if ups else "./") + rest


def normalise(path: str) -> str:
    """A POSIX path with its ./ and ../ resolved, without touching the filesystem."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts)


def rewrite_module(
    package: str, source: str, text: str, roots: dict[str, Path]
) -> tuple[str, list[tuple[str, str]]]:
    """One module with its imports made relative and its comments made safe; what it imports."""
    target = destination(package, source)
    imported: list[tuple[str, str]] = []

    def rewrite(spec: str) -> str:
        if spec.startswith("."):
            dep = (package, normalise(posixpath.join(posixpath.dirname(source), spec)))
        else:
            dep = resolve_bare(spec, roots)
        imported.append(dep)
        return relative(target, destination(*dep))

    def static(match: re.Match[str]) -> str:
        head = match.group("head").rstrip()
        return f'{head} "{rewrite(match.group("spec"))}";'

    def side_effect(match: re.Match[str]) -> str:
        return f'import "{rewrite(match.group("spec"))}";'

    text = STATIC_IMPORT.sub(static, text)
    text = SIDE_EFFECT_IMPORT.sub(side_effect, text)
    text = SOURCE_MAP.sub("", text)
    text = TYPE_IMPORT.sub(r"import (\1", text)
    for match in ANY_IMPORT.finditer(text):
        if not match.group("spec").startswith("."):
            raise SystemExit(f"{target}: a bare import is left: {match.group(0)!r}")
    return text, imported


def vendor(roots: dict[str, Path]) -> dict[str, str]:
    """Follow the graph from ENTRIES; the rewritten text of every module, by target path."""
    out: dict[str, str] = {}
    queue = [(package, source) for package, source, _ in ENTRIES]
    seen: set[tuple[str, str]] = set()
    while queue:
        package, source = queue.pop()
        if (package, source) in seen:
            continue
        seen.add((package, source))
        text = (roots[package] / source).read_text(encoding="utf-8")
        out[destination(package, source)], imported = rewrite_module(package, source, text, roots)
        queue.extend(imported)
    return out


def check_manifest_patterns(files: dict[str, str]) -> None:
    """Every import Django's manifest storage would rewrite names a vendored file."""
    from django.contrib.staticfiles.storage import HashedFilesMixin

    patterns = [
        re.compile(pattern, re.IGNORECASE)
        for pattern, _ in HashedFilesMixin._js_module_import_aggregation_patterns[1]
    ]
    problems = []
    for target, text in files.items():
        for pattern in patterns:
            for match in pattern.finditer(text):
                url = match.group("url")
                if normalise(posixpath.join(posixpath.dirname(target), url)) not in files:
                    problems.append(f"{target}: {match.group('matched')[:80]!r}")
    if problems:
        raise SystemExit("the manifest storage would fail on:\n" + "\n".join(problems))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vendor-yjs-") as temp:
        roots = npm_pack(Path(temp))
        files = vendor(roots)
        check_manifest_patterns(files)
        if VENDOR.exists():
            shutil.rmtree(VENDOR)
        for target, text in sorted(files.items()):
            path = VENDOR / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for name, root in roots.items():
            shutil.copyfile(root / "LICENSE", VENDOR / name / "LICENSE")
    lines = [
        f"{name} {version} https://registry.npmjs.org/{name}" for name, version in PINS.items()
    ]
    (VENDOR / "VERSIONS").write_text("\n".join(lines) + "\n")
    print(f"{len(files)} modules in {VENDOR.relative_to(ROOT)}: " + ", ".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
