"""Processes and ports for the tests, on top of mcp_pa.up.stack (the same code `mcp-pa up` runs)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping

from mcp_pa.up.stack import Probe, Service, StackError, free_port, free_ports, mcp_pa_command, port_open

__all__ = [
    "REPO", "VENV_BIN", "Service", "StackError", "free_port", "free_ports", "listening", "mcp_pa_command",
    "scratch_dir", "service", "wait_for_port",
]

REPO = Path(__file__).resolve().parent.parent.parent
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0  # two busy cores shared with other suites: generous, never asserted on


def service(name: str, argv: list[str], log: Path, ready: Probe, env: Mapping[str, str] | None = None) -> Service:
    """A service run from the checkout with this environment plus `env`."""
    return Service(name, argv, log, ready, env={**os.environ, **(env or {})}, cwd=REPO)


def listening(
    name: str, argv: list[str], port: int, log: Path, env: Mapping[str, str] | None = None, timeout: float = START_TIMEOUT
) -> Service:
    """Start a service and wait until it accepts connections on `port`; on failure nothing is left running."""
    return service(name, argv, log, port_open(port), env).run(timeout)


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> None:
    """Wait for a server this process runs (a thread, not a child) to listen on host:port."""
    probe = port_open(port, host)
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder outside /tmp/pytest-of-*: a concurrent pytest run resets that folder to
    0700, which the embedded PostgreSQL's own system user (pgserver, when run as root) must traverse."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def npm_install(target: Path, *packages: str) -> None:
    """`npm install` the packages into `target`, staged beside it and renamed: an interrupted install never looks complete."""
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(staging), *packages],
        check=True, capture_output=True, timeout=600,
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
