"""Autobahn WebSocket conformance of the production daphne stack.

The Autobahn TestSuite's fuzzing-client cases (run on Python 3 by `kosoku`) are driven
against the real `daphne` binary, started with exactly the arguments of
deploy/daphne.args, serving a test-only echo application (tests/integration/echo_asgi.py),
since the chat socket does not echo. Every case must come out OK, NON-STRICT or
INFORMATIONAL, except the failures pinned, each with its reason, in
autobahn_expected.json.

The whole suite runs, performance (9.*) and compression (12.*, 13.*) groups included:
on two cores it takes about a minute, most of it 9.7.1 and 9.8.1 waiting on empty echoes
until daphne's keepalive ping ends them; the compression cases are refused at once,
since daphne declines permessage-deflate.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import DAPHNE, ROOT, free_port

pytestmark = pytest.mark.integration

KOSOKU = str(Path(sys.executable).with_name("kosoku"))
EXPECTED = Path(__file__).with_name("autobahn_expected.json")
ECHO_APP = "tests.integration.echo_asgi:application"
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
# A full run takes about a minute; this bounds a run that hangs, not a slow one.
SUITE_TIMEOUT = 600


@dataclass(frozen=True)
class Pin:
    """An expected non-passing verdict: the cases it covers, and why."""

    patterns: tuple[str, ...]
    behavior: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """One case's outcome as the fuzzing client reported it."""

    case_id: str
    behavior: str
    behavior_close: str
    description: str
    result: str

    @property
    def passed(self) -> bool:
        return self.behavior in PASSING and self.behavior_close in PASSING

    def __str__(self) -> str:
        return (
            f"{self.case_id} [{self.behavior} / {self.behavior_close}] "
            f"{self.description} -> {self.result}"
        )


def load_pins() -> list[Pin]:
    data = json.loads(EXPECTED.read_text())
    return [
        Pin(tuple(entry["cases"]), entry["behavior"], entry["reason"])
        for entry in data["expected_failures"]
    ]


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


@pytest.fixture(scope="module")
def echo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ws:// URL of a daphne process, with the production arguments, serving the echo app."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("autobahn") / "daphne.log"
    args = (ROOT / "deploy" / "daphne.args").read_text().split()
    command = [DAPHNE, *args, "-b", "127.0.0.1", "-p", str(port), ECHO_APP]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "daphne did not start: " + log_path.read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except urllib.error.HTTPError:
                # The echo app answers plain HTTP with 404: daphne is serving.
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def run_suite(url: str, outdir: Path) -> list[Verdict]:
    """Run every Autobahn fuzzing-client case against `url`; the per-case verdicts."""
    # kosoku runs in a process of its own: it puts the Python 2 era case files and
    # stand-in `autobahn` and `pkg_resources` packages at the front of sys.path of the
    # process that runs it, which must not leak into a process that may import the real
    # autobahn (daphne is built on it).
    completed = subprocess.run(
        [KOSOKU, "--mode", "fuzzingclient", "--outdir", str(outdir), url],
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
        check=False,
    )
    # Exit status 1 only says that some case did not pass; the report says which.
    assert completed.returncode in (0, 1), completed.stderr[-3000:]
    index = json.loads((outdir / "index.json").read_text())
    assert len(index) == 1, f"expected one agent under test, got {sorted(index)}"
    (cases,) = index.values()
    verdicts = []
    for case_id, entry in cases.items():
        report = json.loads((outdir / entry["reportfile"]).read_text())
        verdicts.append(
            Verdict(
                case_id,
                entry["behavior"],
                entry["behaviorClose"],
                report["description"],
                report["result"],
            )
        )
    return sorted(verdicts, key=lambda verdict: case_key(verdict.case_id))


def test_pinned_failures_are_explained() -> None:
    pins = load_pins()
    assert pins
    for pin in pins:
        assert pin.patterns, pin
        assert pin.behavior not in PASSING, pin
        assert pin.reason.strip() and "\n" not in pin.reason, pin
    patterns = [pattern for pin in pins for pattern in pin.patterns]
    assert len(patterns) == len(set(patterns)), "a case is pinned twice"


def test_daphne_passes_autobahn_except_pinned_failures(echo_url: str, tmp_path: Path) -> None:
    pins = load_pins()
    verdicts = run_suite(echo_url, tmp_path / "reports")
    # The whole suite ran: every group from 1 (framing) to 13 (compression).
    assert len(verdicts) > 500, len(verdicts)
    groups = {verdict.case_id.split(".")[0] for verdict in verdicts}
    assert groups >= {"1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"}, groups

    problems: list[str] = []
    matched: set[str] = set()
    for verdict in verdicts:
        pin, pattern = next(
            (
                (pin, pattern)
                for pin in pins
                for pattern in pin.patterns
                if fnmatch.fnmatchcase(verdict.case_id, pattern)
            ),
            (None, None),
        )
        if pin is None or pattern is None:
            if not verdict.passed:
                problems.append(f"newly failing: {verdict}")
            continue
        matched.add(pattern)
        if verdict.passed:
            problems.append(f"pinned ({pin.reason}) but now passes, unpin it: {verdict}")
        elif verdict.behavior != pin.behavior:
            problems.append(f"pinned as {pin.behavior} ({pin.reason}) but got: {verdict}")

    for pin in pins:
        for pattern in pin.patterns:
            if pattern not in matched:
                problems.append(f"pinned case {pattern} did not run ({pin.reason})")

    assert not problems, "\n".join(problems)
