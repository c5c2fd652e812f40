"""One scenario at chosen rates, optionally under py-spy: for profiling, not the report.

    .venv/bin/python bench/probe.py site --workers 2 --room 100 --rates 50 100 200
    .venv/bin/python bench/probe.py site --room 100 --rates 100 --profile /tmp/site

With --profile, every worker is recorded by py-spy during the steps (one
flame graph SVG and one speedscope JSON per worker, at the given path prefix).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen.pool import ClientPool
from measuring import CLIENT_PROCESSES, SENDERS, STEP_SECONDS, passes
from targets.baselines import Node, Tutorial
from targets.proc import process_cpu_seconds
from targets.site import Site

TARGETS = {"site": Site, "tutorial": Tutorial, "node-ws": Node}


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of a process, by thread id: the
    main thread runs the event loop; the others are the database thread and pools."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended meanwhile
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--room", type=int, default=100)
    parser.add_argument("--rates", type=float, nargs="+", required=True)
    parser.add_argument("--seconds", type=float, default=STEP_SECONDS)
    parser.add_argument("--profile", help="py-spy output path prefix")
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    target = TARGETS[args.target](log_dir)
    pool = ClientPool(CLIENT_PROCESSES)
    spies: list[subprocess.Popen[bytes]] = []
    try:
        target.prepare()
        target.start(args.workers)
        opened = pool.open(target.spec(target.room()), args.room, target.open_concurrency)
        print(f"opened {opened}; logs in {log_dir}", flush=True)
        if args.profile:
            py_spy = Path(sys.executable).parent / "py-spy"
            for pid in target.pids:
                for form, suffix in (("speedscope", "json"),):
                    spies.append(
                        subprocess.Popen(  # noqa: S603  (our own command line)
                            [
                                str(py_spy),
                                "record",
                                "-p",
                                str(pid),
                                "-r",
                                "200",
                                "-f",
                                form,
                                "-o",
                                f"{args.profile}-{pid}.{suffix}",
                                "--nonblocking",
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
        for rate in args.rates:
            threads_before = {pid: thread_cpu_seconds(pid) for pid in target.pids}
            before = target.cpu_seconds()
            client_before = sum(process_cpu_seconds(p) for p in pool.pids)
            step = pool.step(rate, args.seconds, SENDERS)
            server = target.cpu_seconds() - before
            client = sum(process_cpu_seconds(p) for p in pool.pids) - client_before
            per = server / step["delivered"] * 1e6 if step["delivered"] else float("nan")
            print(
                f"{rate:>8g}/s {'pass' if passes(step) else 'FAIL'}"
                f" p50 {step['p50_ms']} p99 {step['p99_ms']} max {step['max_ms']}"
                f" late/lost {step['late_or_lost']} delivered {step['delivered']}"
                f" server {server:.2f}s ({per:.0f} us/delivery) client {client:.2f}s",
                flush=True,
            )
            messages = step["delivered"] / args.room if step["delivered"] else 0
            for pid, earlier in threads_before.items():
                later = thread_cpu_seconds(pid)
                loop = later.get(pid, 0.0) - earlier.get(pid, 0.0)
                rest = sum(later.values()) - sum(earlier.values()) - loop
                if messages:
                    print(
                        f"    worker {pid}: event loop {loop / messages * 1e6:.0f} us/message,"
                        f" other threads {rest / messages * 1e6:.0f} us/message"
                        f" ({messages:.0f} messages)",
                        flush=True,
                    )
            if not passes(step):
                pool.settle()
    finally:
        for spy in spies:
            spy.send_signal(2)
        for spy in spies:
            spy.wait(timeout=60)
        pool.close()
        target.stop()
        target.cleanup()
        if os.environ.get("KEEP_LOGS") is None:
            for path in log_dir.glob("*.log"):
                tail = path.read_text(errors="replace").splitlines()[-5:]
                print(path.name, *tail, sep="\n  ")


if __name__ == "__main__":
    main()
