"""`mcp-pa up`: the whole stack on one machine, supervised.

Order: dev TLS certificate → embedded PostgreSQL (unless MCP_HTTP_DATABASE_CONNECTION_STRING is
set) → authz → app → Envoy. Each child runs in its own process group with its log in
`<state dir>/logs/`; when one exits the rest are stopped and the reason is shown with the last
lines of its log. SIGINT/SIGTERM stop everything and leave no process behind.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Callable, TextIO

from mcp_pa.core import contract
from mcp_pa.core.settings import ENV_PREFIX, Settings, get_settings
from mcp_pa.health import grpc_serving, http_ok
from mcp_pa.up.certs import DevCerts, ensure_dev_certs

if TYPE_CHECKING:
    import pgserver

READY_TIMEOUT = 90.0  # generous: two busy cores may start three Python/C++ processes at once
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20
API_KEY_FILE = "api-key"
PROBE_INTERVAL = 0.1
LOOPBACK = "127.0.0.1"
INSPECTOR = "@modelcontextprotocol/inspector@0.21.1"  # the version docs/clients.md and its tests use


class UpError(Exception):
    """A problem the user can fix; shown as one message without a traceback."""


@dataclass
class Child:
    """One supervised process: how to start it and how to tell that it is ready."""

    name: str
    argv: list[str]
    log: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            # A new session per child: Ctrl-C in the terminal reaches only `up`, which then stops
            # the children in order, and killpg reaches each child's own helpers too.
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
            )

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def exit_reason(self) -> str:
        assert self.proc is not None and self.proc.returncode is not None
        code = self.proc.returncode
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        # Helpers left in the child's group after the leader is gone (rare) go too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Supervisor:
    """Starts children in order, waits until each is ready, watches them, stops them in reverse."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.children: list[Child] = []
        self.stop_signal: int | None = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def check_stop(self) -> None:
        if self.stop_signal is not None:
            raise UpError(f"stopping ({signal.Signals(self.stop_signal).name} received)")

    def start(self, child: Child, what: str, timeout: float = READY_TIMEOUT) -> None:
        self.check_stop()
        self.say(f"  starting {child.name:<8} {what}")
        started = time.monotonic()
        child.start()
        self.children.append(child)
        deadline = started + timeout
        while not child.ready():
            self.check_stop()
            if child.exited():
                raise UpError(self.failure(child))
            if time.monotonic() > deadline:
                raise UpError(
                    f"{child.name} was not ready after {timeout:.0f}s; last lines of {child.log}:\n"
                    + _indent(child.tail())
                )
            time.sleep(PROBE_INTERVAL)
        self.say(f"  ready    {child.name:<8} ({time.monotonic() - started:.1f}s)")

    def failure(self, child: Child) -> str:
        return f"{child.name} {child.exit_reason()}; last lines of {child.log}:\n" + _indent(child.tail())

    def watch(self) -> Child | None:
        """Block until a child exits (returned) or a stop signal arrives (None)."""
        while self.stop_signal is None:
            for child in self.children:
                if child.exited():
                    return child
            time.sleep(0.2)
        return None

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if not child.exited():
                self.say(f"  stopping {child.name}")
            child.stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when `up` dies, even by SIGKILL (Linux), so nothing is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())


# --- ports -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortUse:
    """A port `up` will listen on, the address it binds and the flag (or setting) that changes it."""

    port: int
    host: str
    flag: str


def check_ports(uses: list[PortUse]) -> None:
    """Fail early with a message naming the flag to change, instead of a child's bind error later."""
    seen: dict[int, str] = {}
    for use in uses:
        if use.port in seen:
            raise UpError(f"{use.flag} and {seen[use.port]} are both {use.port}: give each its own port")
        seen[use.port] = use.flag
        family = socket.AF_INET6 if ":" in use.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR as the servers themselves use it: a socket in TIME_WAIT from a previous
            # run is not "in use", a listening one is.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((use.host, use.port))
            except OSError as exc:
                raise UpError(
                    f"port {use.port} ({use.host}) is already in use ({exc.strerror}): stop whatever "
                    f"listens there (another `mcp-pa up`?) or choose another port with {use.flag}"
                ) from exc


# --- the dev API key ---------------------------------------------------------------------------


def dev_api_key(state_dir: Path) -> str:
    """The development API key: made once, kept in the state dir with mode 0600."""
    path = state_dir / API_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if key.startswith(contract.API_KEY_PREFIX) and len(key) >= 32:
            path.chmod(0o600)
            return key
    key = contract.API_KEY_PREFIX + secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


# --- what `up` prints when ready ---------------------------------------------------------------


def client_help(mcp_url: str, api_key: str | None, ca: Path | None) -> str:
    """The contract lines (`MCP URL: …`, `API key: …`) followed by ready-to-paste client configs."""
    lines = [f"MCP URL: {mcp_url}"]
    if api_key is not None:
        lines.append(f"API key: {api_key}")
    key = api_key or "<your API key>"
    header = f"{contract.HEADER_API_KEY}: {key}"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    cacert = f"--cacert {shlex.quote(str(ca))} " if ca else ""
    lines += [
        "",
        "Try it:",
        f"  curl {cacert}-H {shlex.quote(header)} -H 'content-type: application/json' \\",
        f"       -H 'accept: application/json, text/event-stream' -d {shlex.quote(body)} {mcp_url}",
    ]
    if ca:
        lines += [
            "",
            f"TLS: the certificate is signed by a development CA: {ca}",
            "  clients must trust it:",
            f"  Node (Claude Code, VS Code, Inspector): export NODE_EXTRA_CA_CERTS={shlex.quote(str(ca))}",
            f"  Python (mcp SDK, httpx, requests):       export SSL_CERT_FILE={shlex.quote(str(ca))}",
        ]
    vscode = {"servers": {"mcp-pa": {"type": "http", "url": mcp_url, "headers": {contract.HEADER_API_KEY: key}}}}
    lines += [
        "",
        "Claude Code:",
        f"  claude mcp add --transport http mcp-pa {mcp_url} --header {shlex.quote(header)}",
        "",
        "VS Code (.vscode/mcp.json):",
        *("  " + line for line in json.dumps(vscode, indent=2).splitlines()),
        "",
        "MCP Inspector (docs/clients.md says why this version):",
        f"  npx {INSPECTOR}   (UI: Transport Streamable HTTP, the URL above, header {contract.HEADER_API_KEY})",
        f"  npx {INSPECTOR} --cli {mcp_url} --transport http \\",
        f"      --header {shlex.quote(header)} --method tools/list",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What one `up` runs: ports (every one configurable so stacks can run side by side) and mode."""

    https_port: int
    http_port: int
    authz_port: int
    app_port: int
    metrics_port: int
    state_dir: Path
    public_url: str
    # A platform in front terminates TLS: Envoy serves MCP in plain HTTP on all interfaces.
    behind_tls_proxy: bool = False

    @property
    def listen_address(self) -> str:
        return "0.0.0.0" if self.behind_tls_proxy else LOOPBACK

    @property
    def mcp_url(self) -> str:
        return f"{self.public_url}{contract.MCP_PATH}"

    def port_uses(self) -> list[PortUse]:
        uses = [PortUse(self.http_port, self.listen_address, "--http-port")]
        if not self.behind_tls_proxy:
            uses.insert(0, PortUse(self.https_port, self.listen_address, "--https-port"))
        uses += [PortUse(self.authz_port, LOOPBACK, "--authz-port"), PortUse(self.app_port, LOOPBACK, "--app-port")]
        if self.metrics_port:
            uses.append(PortUse(self.metrics_port, LOOPBACK, f"{ENV_PREFIX}AUTHZ_METRICS_PORT (0 disables metrics)"))
        return uses


def make_plan(args: argparse.Namespace, settings: Settings) -> Plan:
    """The plan from the command line and settings (the flags win over nothing: they are the ports)."""
    behind = bool(getattr(args, "behind_tls_proxy", False))
    # Without an explicit public URL the resource URL must carry the port actually used.
    if "public_url" in settings.model_fields_set:
        public_url = settings.public_url
    elif behind:
        public_url = f"http://localhost:{args.http_port}"
    else:
        public_url = f"https://localhost:{args.https_port}"
    return Plan(
        https_port=args.https_port,
        http_port=args.http_port,
        authz_port=args.authz_port,
        app_port=args.app_port,
        metrics_port=settings.authz_metrics_port,
        state_dir=Path(args.state_dir or settings.state_dir).resolve(),
        public_url=public_url,
        behind_tls_proxy=behind,
    )


def main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Entry point of `mcp-pa up` (see mcp_pa.cli)."""
    settings = get_settings()
    plan = make_plan(args, settings)
    sup = Supervisor(out)
    try:
        if settings.is_production and not plan.behind_tls_proxy:
            # Its only certificate is the development one: never serve that to real clients.
            raise UpError(
                "in production `mcp-pa up` serves only behind a platform that terminates TLS: pass "
                "--behind-tls-proxy, or run Envoy with your certificate (compose, Kubernetes)"
            )
        check_ports(plan.port_uses())
    except UpError as exc:
        print(f"mcp-pa up: {exc}", file=sys.stderr, flush=True)
        return 1

    sup.install_signal_handlers()
    began = time.monotonic()
    sup.say(f"mcp-pa up: state in {plan.state_dir}")
    postgres = None
    try:
        logs = plan.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        certs = None if plan.behind_tls_proxy else ensure_dev_certs(plan.state_dir / "tls")
        api_key = None if settings.is_production else (settings.api_key or dev_api_key(plan.state_dir))
        if settings.database_connection_string:
            dsn = settings.database_connection_string
            sup.say(f"  using    PostgreSQL from {ENV_PREFIX}DATABASE_CONNECTION_STRING")
        else:
            postgres = _start_postgres(sup, plan.state_dir)
            dsn = postgres.get_uri()
        env = _child_env(plan, dsn, api_key)
        for child, what in _children(plan, logs, certs, env, settings):
            sup.start(child, what)
        sup.say(f"\nready in {time.monotonic() - began:.1f}s\n")
        sup.say(client_help(plan.mcp_url, api_key, certs.ca_cert if certs else None))
        failed = sup.watch()
        if failed is not None:
            raise UpError(sup.failure(failed))
        sup.say(f"\nmcp-pa up: {signal.Signals(sup.stop_signal or signal.SIGTERM).name} received, stopping")
        return 0
    except (UpError, OSError) as exc:  # OSError: an unusable state dir, a missing binary
        print(f"mcp-pa up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        sup.stop_all()
        if postgres is not None:
            postgres.cleanup()
        sup.say("mcp-pa up: stopped")


def _child_env(plan: Plan, dsn: str, api_key: str | None) -> dict[str, str]:
    env = dict(os.environ)  # the children read their own settings; `up` only adds what it decided
    env.update({
        f"{ENV_PREFIX}DATABASE_CONNECTION_STRING": dsn,
        f"{ENV_PREFIX}STATE_DIR": str(plan.state_dir),
        f"{ENV_PREFIX}PUBLIC_URL": plan.public_url,
        "PYTHONUNBUFFERED": "1",  # so the last log lines of a crashed child are really its last
    })
    if api_key is not None:
        env[f"{ENV_PREFIX}API_KEY"] = api_key
    return env


def _start_postgres(sup: Supervisor, state_dir: Path) -> "pgserver.PostgresServer":
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers and containers; it is harmless here.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = state_dir / "pgdata"
    sup.say(f"  starting postgres embedded PostgreSQL in {pgdata}")
    started = time.monotonic()
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises whatever initdb/pg_ctl gave it; the user needs one line
        raise UpError(
            f"the embedded PostgreSQL did not start ({exc}); its log is in {pgdata}/log. "
            f"Or use your own: set {ENV_PREFIX}DATABASE_CONNECTION_STRING"
        ) from exc
    sup.say(f"  ready    postgres ({time.monotonic() - started:.1f}s)")
    return server


def _children(
    plan: Plan, logs: Path, certs: DevCerts | None, env: dict[str, str], settings: Settings
) -> list[tuple[Child, str]]:
    python = [sys.executable, "-m", "mcp_pa"]
    authz = Child(
        "authz",
        [*python, "authz", "--listen", f"{LOOPBACK}:{plan.authz_port}", "--metrics-port", str(plan.metrics_port)],
        logs / "authz.log", grpc_serving(plan.authz_port), env,
    )
    # /readyz answers 200 only once the app reaches PostgreSQL (it starts, not ready, without it).
    app = Child(
        "app",
        [*python, "app", "--listen", f"{LOOPBACK}:{plan.app_port}"],
        logs / "app.log", http_ok(f"http://{LOOPBACK}:{plan.app_port}{contract.READYZ_PATH}"), env,
    )
    envoy = _envoy_child(plan, logs, certs, settings)
    where = (
        f"plain HTTP on {plan.listen_address}:{plan.http_port} (TLS by the platform in front)"
        if plan.behind_tls_proxy
        else f"https on {plan.listen_address}:{plan.https_port}, http on :{plan.http_port}"
    )
    return [
        (authz, f"gRPC ext_authz on {LOOPBACK}:{plan.authz_port}"),
        (app, f"MCP app on {LOOPBACK}:{plan.app_port}"),
        (envoy, f"Envoy, {where}"),
    ]


def _envoy_child(plan: Plan, logs: Path, certs: DevCerts | None, settings: Settings) -> Child:
    from mcp_pa.up import envoy_config

    # Admin on an ephemeral loopback port, reported through a file: one port fewer to configure
    # and no clash between stacks running side by side.
    admin_file = plan.state_dir / "envoy-admin-address"
    admin_file.unlink(missing_ok=True)
    options = envoy_config.options_from_settings(
        settings,
        public_url=plan.public_url,
        https_port=plan.https_port,
        http_port=plan.http_port,
        authz_port=plan.authz_port,
        app_port=plan.app_port,
        admin_port=0,
        listen_address=plan.listen_address,
        cert_dir=certs.server_cert.parent if certs else None,
        behind_tls_proxy=plan.behind_tls_proxy,
        # The platform's proxy appends the client address to X-Forwarded-For.
        trusted_hops=1 if plan.behind_tls_proxy else None,
    )
    config = envoy_config.write_config(plan.state_dir / "envoy.yaml", options)
    argv = [*envoy_config.envoy_command(config, log_level="info"), "--admin-address-path", str(admin_file)]
    return Child("envoy", argv, logs / "envoy.log", envoy_ready(admin_file), {})


def envoy_ready(admin_file: Path) -> Callable[[], bool]:
    """Ready when the admin /ready (listeners bound, clusters initialised) answers 200."""

    def probe() -> bool:
        try:
            address = admin_file.read_text().strip()
        except OSError:
            return False
        return bool(address) and http_ok(f"http://{address}/ready")()

    return probe
