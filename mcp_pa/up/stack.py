"""Starting the stack's processes: one `Service` type, the embedded PostgreSQL and the ports.

`mcp-pa up`, the test fixtures and the bench all start their processes here: a service runs in
its own process group with its output appended to a log file (each run after a start marker,
never truncated), is ready when its probe says so (or fails fast with the last lines of this
run's log), and stops with one group kill, SIGTERM then SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, fields
from pathlib import Path

from mcp_pa.core import contract
from mcp_pa.health import http_ok
from mcp_pa.up.envoy_config import envoy_command

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 90.0  # generous: two busy cores may start three Python/C++ processes at once
STOP_TIMEOUT = 10.0
PROBE_INTERVAL = 0.05
LOG_TAIL_LINES = 20
DEFAULT_AUTHZ_METRICS_PORT = 9102  # the settings' default; 0 disables the metrics listener

Probe = Callable[[], bool]


class StackError(Exception):
    """A service that could not start, died or was not ready in time; the message says why and shows its log."""


# --- ports --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ports:
    """The five ports of one stack; every one configurable so that stacks run side by side."""

    https: int = contract.DEFAULT_HTTPS_PORT
    http: int = contract.DEFAULT_HTTP_PORT
    authz: int = contract.DEFAULT_AUTHZ_PORT
    app: int = contract.DEFAULT_APP_PORT
    authz_metrics: int = DEFAULT_AUTHZ_METRICS_PORT

    @classmethod
    def free(cls, authz_metrics: bool = False) -> Ports:
        """Five distinct free loopback ports (metrics disabled, as 0, unless asked for)."""
        https, http, authz, app, metrics = free_ports(5)
        return cls(https, http, authz, app, metrics if authz_metrics else 0)

    @staticmethod
    def flag(name: str) -> str:
        """The `mcp-pa up` flag of a port: `authz_metrics` → `--authz-metrics-port`."""
        return f"--{name.replace('_', '-')}-port"

    def items(self) -> Iterator[tuple[str, int]]:
        for f in fields(self):
            yield f.name, getattr(self, f.name)

    def up_flags(self) -> list[str]:
        """The `mcp-pa up` arguments that select exactly these ports."""
        return [arg for name, port in self.items() for arg in (self.flag(name), str(port))]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct ports free right now (all held open while choosing, so none repeats)."""
    with ExitStack() as held:
        socks = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


@dataclass(frozen=True, slots=True)
class PortUse:
    """A port a stack will listen on, the address it binds and the flag that changes it."""

    port: int
    host: str
    flag: str


def busy_ports(uses: list[PortUse]) -> list[str]:
    """One line per problem (a port given twice, a port already in use), naming the flag to change."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for use in uses:
        if use.port in seen:
            problems.append(f"{use.flag} and {seen[use.port]} are both {use.port}: give each its own port")
            continue
        seen[use.port] = use.flag
        family = socket.AF_INET6 if ":" in use.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR as the servers themselves use it: a socket in TIME_WAIT from a previous
            # run is not "in use", a listening one is.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((use.host, use.port))
            except OSError as exc:
                problems.append(f"port {use.port} ({use.host}) is already in use ({exc.strerror}): choose another with {use.flag}")
    return problems


# --- readiness probes ---------------------------------------------------------------------------


def port_open(port: int, host: str = LOOPBACK) -> Probe:
    """Ready when something accepts TCP connections on host:port."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


def all_of(*probes: Probe) -> Probe:
    """Ready when every probe is (checked in order, stopping at the first that is not)."""
    return lambda: all(probe() for probe in probes)


def envoy_ready(admin: int | Path) -> Probe:
    """Ready when Envoy's admin /ready answers 200 (listeners bound, clusters initialised).

    `admin` is the admin port, or the file Envoy writes its admin address to (`--admin-address-path`).
    """

    def probe() -> bool:
        if isinstance(admin, int):
            address = f"{LOOPBACK}:{admin}"
        else:
            try:
                address = admin.read_text().strip()
            except OSError:
                return False
        return bool(address) and http_ok(f"http://{address}/ready")()

    return probe


# --- services -----------------------------------------------------------------------------------


def mcp_pa_command(*args: str) -> list[str]:
    """The `mcp-pa` command run with this interpreter (works without the console script)."""
    return [sys.executable, "-m", "mcp_pa", *args]


def tail(log: Path, lines: int = LOG_TAIL_LINES, since: int = 0) -> str:
    """The last lines of a log written after byte offset `since`, or a note saying there are none."""
    try:
        with open(log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def start_marker(name: str) -> bytes:
    """The line that opens one run in a service's log: a JSON line like the services' own."""
    now = time.time()
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
        "level": "info", "logger": "mcp_pa.up", "message": f"--- {name} starting ---",
    }
    return (json.dumps(entry) + "\n").encode()


def indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())


@dataclass
class Service:
    """One process: how to start it, where its output goes and how to tell that it is ready.

    `env` is the whole environment of the child (None: this process's own).
    """

    name: str
    argv: list[str]
    log: Path
    ready: Probe
    env: dict[str, str] | None = None
    cwd: Path | None = None
    # `up` sets this: its children get SIGTERM when it dies, even by SIGKILL (Linux). Off by
    # default because a preexec function is unsafe in a process with threads (pytest's).
    die_with_parent: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # Where this run's lines begin in the log (earlier runs stay above the start marker).
    log_offset: int = field(default=0, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def start(self) -> Service:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.log_offset = out.tell()
            out.write(start_marker(self.name))
            out.flush()
            # A new session per service: Ctrl-C in a terminal reaches only the parent, which stops
            # its services in order, and killpg reaches each service's own helpers too.
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT, check: Callable[[], None] | None = None) -> float:
        """Block until ready; the seconds it took. Raises StackError (with the log tail) if it dies
        or is not ready in time; `check` runs between probes and may raise to give up sooner."""
        started = time.monotonic()
        deadline = started + timeout
        while not self.ready():
            if check is not None:
                check()
            if self.exited():
                raise StackError(self.failure())
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} was not ready after {timeout:.0f}s; last lines of {self.log}:\n" + indent(self.tail()))
            time.sleep(PROBE_INTERVAL)
        return time.monotonic() - started

    def run(self, timeout: float = READY_TIMEOUT) -> Service:
        """Start and wait until ready; on failure nothing is left running."""
        self.start()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def exit_reason(self) -> str:
        assert self.proc is not None and self.proc.returncode is not None
        code = self.proc.returncode
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def failure(self) -> str:
        """Why the service is gone, with the last lines of its log."""
        return f"{self.name} {self.exit_reason()}; last lines of {self.log}:\n" + indent(self.tail())

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines this run wrote."""
        return tail(self.log, lines, self.log_offset)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the process group, SIGKILL after `timeout`; idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        # Helpers left in the group after the leader is gone (rare) go too.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, so nothing is orphaned (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# --- the embedded PostgreSQL --------------------------------------------------------------------


# --- Envoy --------------------------------------------------------------------------------------


def envoy_service(
    name: str, config_path: Path, log: Path, admin: int | Path, log_level: str = "warn", concurrency: int | None = None
) -> Service:
    """Envoy from a derived config; `admin` is its admin port, or a file to report an ephemeral one in."""
    argv = envoy_command(config_path, log_level=log_level, concurrency=concurrency)
    if isinstance(admin, Path):
        admin.unlink(missing_ok=True)
        argv += ["--admin-address-path", str(admin)]
    # Envoy needs nothing from the environment; an empty one keeps secrets out of its process.
    return Service(name, argv, log, envoy_ready(admin), env={})
