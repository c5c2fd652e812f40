"""Every Markdown file that the code and the docs name exists.

A comment that cites a contract the project does not hold sends a reader
nowhere: the protocol is `docs/protocol-v1.md`, what the site adds is
`docs/protocol.md`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = {".py", ".md", ".js", ".css", ".html", ".sh", ".conf", ".yml", ".toml", ".txt"}
TEXT_NAMES = {"Makefile", "Dockerfile", "run"}
# A path ending in .md, not part of a longer word, path or URL; placeholders
# such as `results/<date>/README.md` name no one file and are passed over.
MARKDOWN_PATH = re.compile(r"(?<![\w./<>:-])((?:\.\.?/)*[\w-][\w.-]*(?:/[\w.-]+)*\.md)\b")


def project_files() -> list[Path]:
    """What git would commit: tracked files and new ones that are not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    paths = [ROOT / name for name in listed.split("\0") if name]
    return [
        path
        for path in paths
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES)
    ]


def named_markdown(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text(errors="replace").splitlines()
    return [
        (number, match)
        for number, line in enumerate(lines, start=1)
        for match in MARKDOWN_PATH.findall(line)
    ]


def exists(name: str, *, named_in: Path) -> bool:
    """In code a path is from the top of the project; in Markdown, also from the file."""
    if named_in.suffix != ".md" and name.startswith("../"):
        # A relative link that code writes into a document of its own
        # (bench/report.py into bench/results/<date>/README.md).
        return True
    return (ROOT / name).exists() or (ROOT / named_in.parent / name).exists()


def test_every_markdown_path_named_exists():
    named = {
        (path.relative_to(ROOT), number, name)
        for path in project_files()
        if path != Path(__file__)  # its examples name missing files on purpose
        for number, name in named_markdown(path)
    }
    missing = [
        f"{path}:{number}: {name}"
        for path, number, name in sorted(named)
        if not exists(name, named_in=path)
    ]
    assert missing == []
    # The scan reads what it should: the contract is cited across the code.
    citing = {str(path) for path, _, name in named if name == "docs/protocol-v1.md"}
    assert {"chat/sockets/room.py", "chat/protocol.py", "README.md"} <= citing


def test_the_scan_finds_a_path_that_does_not_exist(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""See PROTOCOL.md and docs/protocol-v1.md, not bench/results/<date>/README.md."""\n'
        "# https://example.com/a.md and ../../bench/PROFILE.md\n"
    )
    assert named_markdown(sample) == [
        (1, "PROTOCOL.md"),
        (1, "docs/protocol-v1.md"),
        (2, "../../bench/PROFILE.md"),
    ]
