"""Moved to tests.support.processes: import from there.

Kept only while three modules being edited elsewhere (tests/authz/test_apikey.py,
tests/authz/test_server_process.py, tests/clients/front_door.py) still import it; both
functions below are the stack's own Service underneath, not a second copy.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mcp_pa.up.stack import Probe, Service, port_open
from tests.support import processes
from tests.support.processes import REPO, VENV_BIN, free_port, mcp_pa_command, scratch_dir

__all__ = ["REPO", "VENV_BIN", "free_port", "mcp_pa_command", "scratch_dir", "stop_process", "wait_for_port"]


def _adopt(proc: subprocess.Popen[bytes], ready: Probe = lambda: True) -> Service:
    return Service("process", [], Path("/dev/null"), ready, proc=proc)


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    if proc is None:
        processes.wait_for_port(port, host, timeout)
    else:
        _adopt(proc, port_open(port, host)).wait_ready(timeout)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    _adopt(proc).stop(timeout)
