"""Local servers the tests start themselves: free ports and a redis-server of their own."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of one test alone, which it may stop and start on the same port;
    with `replica_of`, a replica of another one (by its port)."""

    def __init__(
        self, log_dir: Path, *, name: str = "redis", replica_of: int | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"{name}.log"
        self.replica_of = replica_of
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # No persistence: a restart is a Redis that lost every group and key.
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.log_path.parent)]
        if self.replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.answers():
            assert self.process.poll() is None, self.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it (SIGKILL): the workers' connections die without a goodbye."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


class Sentinels:
    """Redis Sentinels (redis-server --sentinel) watching masters given by name and port."""

    def __init__(
        self,
        log_dir: Path,
        masters: dict[str, int],
        *,
        count: int = 3,
        quorum: int = 2,
        down_after_ms: int = 1000,
    ) -> None:
        self.log_dir = log_dir
        self.masters = masters
        self.ports = [free_port() for _ in range(count)]
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS for them."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        for index, port in enumerate(self.ports):
            # Sentinel rewrites its file as it learns: each has its own.
            config = self.log_dir / f"sentinel-{index}.conf"
            lines = [f"port {port}", "bind 127.0.0.1", f"dir {self.log_dir}"]
            for name, master in self.masters.items():
                lines += [
                    f"sentinel monitor {name} 127.0.0.1 {master} {self.quorum}",
                    f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
                    f"sentinel failover-timeout {name} 4000",
                    f"sentinel parallel-syncs {name} 1",
                ]
            config.write_text("\n".join(lines) + "\n")
            with open(self.log_dir / f"sentinel-{index}.log", "ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        ["redis-server", str(config), "--sentinel"],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 10
        for port in self.ports:
            while self.master_port(next(iter(self.masters)), port) is None:
                assert time.monotonic() < deadline, "a Sentinel did not start"
                time.sleep(0.05)

    def master_port(self, name: str, port: int | None = None) -> int | None:
        """The port of `name`'s master as a Sentinel (the first, or `port`) says now."""
        reply = _ask(port or self.ports[0], f"SENTINEL get-master-addr-by-name {name}")
        parts = [line for line in reply.split("\r\n") if line and line[0] not in "*$"]
        return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(10)
        self.processes = []


def _ask(port: int, command: str) -> str:
    """One inline command to a Redis (or Sentinel) on `port`; its raw reply, or ""."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(command.encode() + b"\r\n")
            return sock.recv(4096).decode(errors="replace")
    except OSError:
        return ""
