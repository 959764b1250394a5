"""Small helpers shared by the test suites: free ports, waiting for sockets, child processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def mcp_pa_command(*args: str) -> list[str]:
    """The `mcp-pa` command run with this interpreter (works without the console script)."""
    return [sys.executable, "-m", "mcp_pa", *args]


def start_process(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    full_env = {**os.environ, **(env or {})}
    out = open(log, "wb") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


def start_listening(cmd: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None, timeout: float = 60.0) -> subprocess.Popen:
    """Start a child that listens on port and wait until it does; on failure nothing is left running."""
    proc = start_process(cmd, env=env, log=log)
    try:
        wait_for_port(port, timeout=timeout, proc=proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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
