"""The client processes, in the bench's main process: a step's measurement from what they saw."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import numpy as np

from loadgen.client import child_main

# How long after a step's last due time a message may still arrive; anything
# later counts as not delivered for the step (it has failed on latency anyway).
DRAIN_SECONDS = 2.0


def percentiles(latencies: np.ndarray) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds (None without samples)."""
    if latencies.size == 0:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99 = np.percentile(latencies, [50, 99])
    return {
        "p50_ms": float(p50) * 1000,
        "p99_ms": float(p99) * 1000,
        "max_ms": float(latencies.max()) * 1000,
    }


class ClientPool:
    """The client processes, and the measurements made with them."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes = []
        self.processes = []
        for _ in range(processes):
            here, there = context.Pipe()
            process = context.Process(target=child_main, args=(there,), daemon=True)
            process.start()
            self.pipes.append(here)
            self.processes.append(process)
        self.sockets = 0
        self.key = 0
        # Sockets in many rooms of this size (the spec's `room_size`), or None for one room.
        self.room_size: int | None = None

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def call(self, command: str, arguments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run `command` in every process at once (its own arguments each); their results."""
        for pipe, kwargs in zip(self.pipes, arguments, strict=True):
            pipe.send((command, kwargs))
        results = [pipe.recv() for pipe in self.pipes]
        for result in results:
            if "error" in result:
                raise RuntimeError(result["error"])
        return results

    def call_all(self, command: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self.call(command, [kwargs] * len(self.pipes))

    def open(self, spec: dict[str, Any], count: int, concurrency: int = 48) -> dict[str, Any]:
        """Open `count` more sockets to `spec`, spread over the processes."""
        size = len(self.pipes)
        indices = [
            [i for i in range(self.sockets, self.sockets + count) if i % size == p]
            for p in range(size)
        ]
        share = max(1, concurrency // size)
        if spec.get("rooms"):
            assert self.sockets == 0, "sockets in many rooms are opened at once, from socket 0"
            self.room_size = spec["room_size"]
        results = self.call(
            "open", [{"spec": spec, "indices": ix, "concurrency": share} for ix in indices]
        )
        self.sockets += count
        failed = sum(result["failed"] for result in results)
        if failed:
            failures = [f for result in results for f in result["failures"]]
            raise RuntimeError(f"{failed} of {count} sockets failed to open: {failures}")
        return {
            "seconds": max(result["seconds"] for result in results),
            "refused": sum(result["refused"] for result in results),
            "refusals": [r for result in results for r in result["refusals"]][:3],
        }

    def forget(self) -> None:
        """Close every socket; the next open starts again from socket 0."""
        self.call_all("forget")
        self.sockets = 0
        self.room_size = None

    def reopen(self, concurrency: int) -> int:
        """Reconnect the sockets the server closed; how many there were."""
        share = max(1, concurrency // len(self.pipes))
        return sum(result["reopened"] for result in self.call_all("reopen", concurrency=share))

    def trim(self, count: int) -> None:
        """Close the sockets opened after the first `count`."""
        self.call_all("trim", keep=count)
        self.sockets = count

    def close_all(self) -> None:
        """Close every socket, remembering them for `storm`."""
        self.call_all("close")

    def storm(self, concurrency: int) -> dict[str, Any]:
        """Reconnect every socket closed by `close_all`, all at the same moment.

        Refused sockets then retry, `concurrency` at a time in all, until all are back.
        """
        start_at = time.time() + 0.5
        share = max(1, concurrency // len(self.pipes))
        results = self.call_all("storm", start_at=start_at, concurrency=share)
        done = np.array([t for result in results for t in result["done_at"]]) - start_at
        elapsed = float(done.max()) if done.size else float("nan")
        return {
            "clients": self.sockets,
            "failed": sum(result["failed"] for result in results),
            "failures": [f for result in results for f in result["failures"]][:5],
            "seconds": elapsed,
            # Refused clients retried, a few at a time, until every one was back.
            "all_back_seconds": max(result["all_back_at"] for result in results) - start_at,
            "handshakes_per_s": done.size / elapsed if done.size else 0.0,
            "p50_ms": float(np.percentile(done, 50)) * 1000 if done.size else None,
            "p99_ms": float(np.percentile(done, 99)) * 1000 if done.size else None,
        }

    def step(self, rate: float, duration: float, senders: int) -> dict[str, Any]:
        """One step at `rate` messages/s into the room; what every member received.

        In many rooms, `rate` is the total over all of them: each room's first
        socket sends its share, and each socket expects its own room's messages.
        """
        self.key += 1
        # At low rates a step lasts long enough for a few messages per sender slot.
        duration = max(duration, min(4.0, 2 / rate))
        size = len(self.pipes)
        room_size = self.room_size or 1
        if self.room_size:
            senders = self.sockets // room_size  # one per room
        senders = min(senders, self.sockets)
        mine: list[list[tuple[int, int]]] = [[] for _ in range(size)]
        for sender in range(senders):
            index = sender * room_size  # the sender's socket
            mine[index % size].append((sender, index // size))
        start_at = time.time() + 0.3
        wall = time.time()
        sent_results = self.call(
            "step",
            [
                {
                    "key": self.key,
                    "start_at": start_at,
                    "duration": duration,
                    "rate": rate,
                    "senders": senders,
                    "mine": mine[p],
                }
                for p in range(size)
            ],
        )
        sent = sum(result["sent"] for result in sent_results)
        deadline = start_at + duration + DRAIN_SECONDS
        if self.room_size:
            by_room = {k: n for result in sent_results for k, n in result["sent_by"].items()}
            # Socket i of the pool is slot i // size of process i % size.
            slots = [len(range(p, self.sockets, size)) for p in range(size)]
            wanted = [
                [by_room.get((p + slot * size) // room_size, 0) for slot in range(slots[p])]
                for p in range(size)
            ]
            drained = self.call("drain", [{"expected": w, "deadline": deadline} for w in wanted])
            expected = sum(map(sum, wanted))
        else:
            drained = self.call_all("drain", expected=sent, deadline=deadline)
            expected = sent * self.sockets
        wall = time.time() - wall
        unique = sum(result["unique"] for result in drained)
        latencies = np.concatenate(
            [np.frombuffer(result["latencies"], dtype=np.float64) for result in drained]
        )
        cpu = sum(r["cpu"] for r in sent_results) + sum(r["cpu"] for r in drained)
        closes: dict[str, int] = {}
        for result in drained:
            for code, count in result["closes"].items():
                closes[code] = closes.get(code, 0) + count
        measurement: dict[str, Any] = {
            "key": self.key,
            "offered_rate": rate,
            "sent_rate": sent / duration,
            "duration_s": duration,
            "sockets": self.sockets,
            "senders": senders,
            "sent": sent,
            "expected": expected,
            "delivered": unique,
            "delivered_per_s": unique / duration,
            "late_or_lost": expected - unique,
            "duplicates": sum(result["duplicates"] for result in drained),
            "reordered": sum(result["reordered"] for result in drained),
            "errors": sum(result["errors"] for result in drained),
            "unexpected_closes": closes,
            "send_lag_ms": max(result["lag"] for result in sent_results) * 1000,
            # CPU seconds of the client processes per wall second: 1.0 is one core.
            "client_cpu": cpu / wall,
            "client_cpu_max_process": max(
                (s["cpu"] + d["cpu"]) / wall for s, d in zip(sent_results, drained, strict=True)
            ),
            **percentiles(latencies),
        }
        if unique < expected:
            # Late, or lost? Wait for the server to go quiet, then count again.
            quiet = self.call_all("quiet", idle=0.5, cap=15.0)
            measurement["lost"] = expected - sum(result["unique"] for result in quiet)
        else:
            measurement["lost"] = 0
        return measurement

    def settle(self, idle: float = 0.3, cap: float = 15.0) -> None:
        """Wait until nothing has arrived on any socket for `idle` seconds."""
        self.call_all("quiet", idle=idle, cap=cap)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("exit", {}))
                pipe.recv()
            except (EOFError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
