"""The processes a bench part needs (authz, floor, Envoy, app, PostgreSQL), started and always stopped.

Everything runs on free loopback ports with its log under the results directory, so a bench
run never collides with a local `mcp-pa up` or with tests running at the same time.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bench.load import BenchError
from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres, EmbeddedPostgresError
from mcp_pa.health import http_ok
from mcp_pa.up import envoy_config
from mcp_pa.up.stack import Probe, Service, StackError, all_of, envoy_service, free_ports, mcp_pa_command, port_open

START_TIMEOUT = 90.0  # two busy cores may be starting several Python processes at once
REPO = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS in /proc/PID/status), in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class Authz:
    """A running `mcp-pa authz`: its process (a worker itself when workers=1) and ports."""

    proc: subprocess.Popen[bytes]
    port: int
    metrics_ports: list[int]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


class Stack(contextlib.ExitStack):
    """Services of mcp_pa.up.stack, each stopped (process group SIGTERM, then SIGKILL) when the block ends."""

    def __init__(self, logs: Path, env: dict[str, str] | None = None) -> None:
        super().__init__()
        self.logs = logs
        self.env = env or {}
        logs.mkdir(parents=True, exist_ok=True)

    def run(self, service: Service) -> subprocess.Popen[bytes]:
        """Start a service, wait until ready; a failure is a BenchError carrying its log tail."""
        self.callback(service.stop)
        try:
            service.run(START_TIMEOUT)
        except StackError as exc:
            raise BenchError(str(exc)) from exc
        assert service.proc is not None
        return service.proc

    def process(self, name: str, cmd: list[str], ready: Probe, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        full_env = {**os.environ, **self.env, **(env or {})}
        return self.run(Service(name, cmd, self.logs / f"{name}.log", ready, full_env, cwd=REPO))

    def authz(self, name: str, port: int, workers: int = 1, env: dict[str, str] | None = None) -> Authz:
        """`mcp-pa authz` on port; ready when every worker's metrics port answers."""
        metrics = port_range(workers)
        metrics_ports = [metrics + i for i in range(workers)]
        ready = all_of(port_open(port), *(port_open(p) for p in metrics_ports))
        proc = self.process(name, mcp_pa_command("authz", "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
                                                 "--metrics-port", str(metrics)), ready, env)
        return Authz(proc, port, metrics_ports)

    def floor(self, port: int, uvloop: bool = False) -> subprocess.Popen[bytes]:
        name = "floor-uvloop" if uvloop else "floor"
        return self.process(name, [sys.executable, "-m", "bench.floor_server", "--listen", f"127.0.0.1:{port}",
                                   *(["--uvloop"] if uvloop else [])], port_open(port))

    def envoy(self, name: str, config: dict[str, Any], admin_port: int, directory: Path) -> subprocess.Popen[bytes]:
        """Envoy with one worker thread: the two cores are shared with the load generator and Python."""
        path = directory / f"{name}.yaml"
        path.write_text(envoy_config.dump(config))
        return self.run(envoy_service(name, path, self.logs / f"{name}.log", admin_port, concurrency=1))

    def app(self, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`mcp-pa app`; ready when /readyz answers 200 (the database is reachable)."""
        return self.process("app", mcp_pa_command("app", "--listen", f"127.0.0.1:{port}"),
                            http_ok(f"http://127.0.0.1:{port}{contract.READYZ_PATH}"), env)

    def postgres(self, datadir: Path) -> str:
        """An embedded PostgreSQL 16 (pgserver); its DSN."""
        try:
            postgres = self.enter_context(EmbeddedPostgres(datadir))
        except EmbeddedPostgresError as exc:
            raise BenchError(str(exc)) from exc
        return postgres.dsn


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


# Every port this run handed out: a later choice must not take one that is chosen but not yet bound.
_HANDED: set[int] = set()
# Consecutive ranges come from below Linux's ephemeral range (32768+), where bind(0) never lands.
_RANGE_FLOOR, _RANGE_CEILING = 20_000, 32_000


def ports(count: int) -> list[int]:
    """`count` free ports, none handed out before in this run."""
    while True:
        chosen = free_ports(count)
        if not _HANDED.intersection(chosen):
            _HANDED.update(chosen)
            return chosen


def port_range(count: int) -> int:
    """The first of `count` consecutive free ports (authz worker *i* serves metrics on base + *i*)."""
    for base in random.Random().sample(range(_RANGE_FLOOR, _RANGE_CEILING - count), 200):
        wanted = set(range(base, base + count))
        if wanted & _HANDED:
            continue
        try:
            for port in wanted:
                socket.create_server(("127.0.0.1", port)).close()
        except OSError:
            continue
        _HANDED.update(wanted)
        return base
    raise BenchError(f"no {count} consecutive free loopback ports between {_RANGE_FLOOR} and {_RANGE_CEILING}")
