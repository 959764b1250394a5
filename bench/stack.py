"""The processes a bench part needs (authz, floor, Envoy, app, PostgreSQL), started and always stopped.

Everything runs on free loopback ports with its log under the results directory, so a bench
run never collides with a local `mcp-pa up` or with tests running at the same time.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bench.load import BenchError
from mcp_pa.up import envoy_config
from tests.helpers import free_port, mcp_pa_command, start_process, stop_process, wait_for_port

START_TIMEOUT = 90.0  # two busy cores may be starting several Python processes at once


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS in /proc/PID/status), in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class Authz:
    """A running `mcp-pa authz`: its process (a worker itself when workers=1) and ports."""

    proc: subprocess.Popen
    port: int
    metrics_ports: list[int]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


class Stack(contextlib.ExitStack):
    """Child processes stopped (process group SIGTERM, then SIGKILL) when the block ends."""

    def __init__(self, logs: Path, env: dict[str, str] | None = None) -> None:
        super().__init__()
        self.logs = logs
        self.env = env or {}
        logs.mkdir(parents=True, exist_ok=True)

    def process(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = start_process(cmd, env={**self.env, **(env or {})}, log=self.logs / f"{name}.log")
        self.callback(stop_process, proc)
        return proc

    def fail(self, name: str, why: str) -> BenchError:
        tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
        return BenchError(f"{name}: {why}\n  " + "\n  ".join(tail))

    def authz(self, name: str, port: int, workers: int = 1, env: dict[str, str] | None = None) -> "Authz":
        """`mcp-pa authz` on port; ready when every worker's metrics port answers."""
        metrics = free_port()
        proc = self.process(name, mcp_pa_command("authz", "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
                                                 "--metrics-port", str(metrics)), env)
        try:
            wait_for_port(port, timeout=START_TIMEOUT, proc=proc)
            for index in range(workers):
                wait_for_port(metrics + index, timeout=START_TIMEOUT, proc=proc)
        except (TimeoutError, RuntimeError) as exc:
            raise self.fail(name, str(exc)) from exc
        return Authz(proc, port, [metrics + i for i in range(workers)])

    def floor(self, port: int, uvloop: bool = False) -> subprocess.Popen:
        name = "floor-uvloop" if uvloop else "floor"
        proc = self.process(name, [sys.executable, "-m", "bench.floor_server", "--listen", f"127.0.0.1:{port}",
                                   *(["--uvloop"] if uvloop else [])])
        wait_for_port(port, timeout=START_TIMEOUT, proc=proc)
        return proc

    def envoy(self, name: str, config: dict[str, Any], admin_port: int, directory: Path) -> subprocess.Popen:
        """Envoy with one worker thread: the two cores are shared with the load generator and Python."""
        path = directory / f"{name}.yaml"
        path.write_text(envoy_config.dump(config))
        proc = self.process(name, envoy_config.envoy_command(path, concurrency=1))
        try:
            envoy_config.wait_until_ready(admin_port, timeout=START_TIMEOUT, proc=proc)
        except (TimeoutError, RuntimeError) as exc:
            raise self.fail(name, str(exc)) from exc
        return proc

    def app(self, port: int, env: dict[str, str]) -> subprocess.Popen:
        """`mcp-pa app`; ready when /readyz answers 200 (the database is reachable)."""
        proc = self.process("app", mcp_pa_command("app", "--listen", f"127.0.0.1:{port}"), env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise self.fail("app", f"exited with {proc.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return proc
            time.sleep(0.1)
        raise self.fail("app", "not ready")

    def postgres(self, datadir: Path) -> str:
        """An embedded PostgreSQL 16 (pgserver); its DSN."""
        import pgserver

        server = pgserver.get_server(datadir, cleanup_mode="stop")
        self.callback(server.cleanup)
        return server.get_uri()


@contextlib.contextmanager
def sampling_rss(pid: int, interval: float = 0.25) -> Iterator[list[float]]:
    """Sample a process's RSS in a thread while the block runs; the list fills with MB values."""
    import threading

    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, BenchError):
                samples.append(rss_mb(pid))
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its direct children (the workers of --workers N)."""
    pids = [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]
