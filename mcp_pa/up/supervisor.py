"""`mcp-pa up`: the whole stack on one machine, supervised.

Order: dev TLS certificate → embedded PostgreSQL (unless MCP_HTTP_DATABASE_CONNECTION_STRING is
set) → authz → app → Envoy. Each child runs in its own process group with its log in
`<state dir>/logs/` (appended, one start marker per run); when one exits the rest are stopped and
the reason is shown with the last lines of its log. SIGINT/SIGTERM stop everything and leave no
process behind, an embedded PostgreSQL left running by an earlier, killed `up` included.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres, EmbeddedPostgresError
from mcp_pa.core.settings import ENV_PREFIX, Settings, get_settings
from mcp_pa.core.tracing import traces_url
from mcp_pa.health import grpc_serving, http_ok
from mcp_pa.up import envoy_config
from mcp_pa.up.certs import DevCerts, ensure_dev_certs
from mcp_pa.up.stack import LOOPBACK, Ports, PortUse, Service, StackError, busy_ports, envoy_service, mcp_pa_command

API_KEY_FILE = "api-key"
WATCH_INTERVAL = 0.2
INSPECTOR = "@modelcontextprotocol/inspector@0.21.1"  # the version docs/clients.md and its tests use
MAX_DEFAULT_WORKERS = 4


class UpError(Exception):
    """A problem the user can fix; shown as one message without a traceback."""


class Supervisor:
    """Starts services in order, waits until each is ready, watches them, stops them in reverse."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.services: list[Service] = []
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

    def start(self, service: Service, what: str) -> None:
        self.check_stop()
        self.say(f"  starting {service.name:<8} {what}")
        self.services.append(service.start())
        seconds = service.wait_ready(check=self.check_stop)
        self.say(f"  ready    {service.name:<8} ({seconds:.1f}s)")

    def watch(self) -> Service | None:
        """Block until a service exits (returned) or a stop signal arrives (None)."""
        while self.stop_signal is None:
            for service in self.services:
                if service.exited():
                    return service
            time.sleep(WATCH_INTERVAL)
        return None

    def stop_all(self) -> None:
        for service in reversed(self.services):
            if not service.exited():
                self.say(f"  stopping {service.name}")
            service.stop()


def check_ports(uses: list[PortUse]) -> None:
    """Fail before starting anything, naming every busy port and its flag at once (not one per run)."""
    problems = busy_ports(uses)
    if problems:
        raise UpError(
            "\n".join(["these ports cannot be used:", *(f"  {line}" for line in problems),
                       "stop whatever listens there (another `mcp-pa up`?) or choose other ports with the flags above"])
        )


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
    """What one `up` runs: the ports, the state dir and the mode."""

    ports: Ports
    state_dir: Path
    public_url: str
    # A platform in front terminates TLS: Envoy serves MCP in plain HTTP on all interfaces.
    behind_tls_proxy: bool = False
    workers: int = 1  # processes each for authz and app

    @property
    def listen_address(self) -> str:
        return "0.0.0.0" if self.behind_tls_proxy else LOOPBACK

    @property
    def mcp_url(self) -> str:
        return f"{self.public_url}{contract.MCP_PATH}"

    def port_uses(self) -> list[PortUse]:
        """Every port this plan listens on (https not behind a TLS proxy, metrics not when 0)."""
        public = {"https", "http"}
        return [
            PortUse(port, self.listen_address if name in public else LOOPBACK, Ports.flag(name))
            for name, port in self.ports.items()
            if not (name == "https" and self.behind_tls_proxy) and not (name == "authz_metrics" and port == 0)
        ] + [
            # Each further authz worker serves its metrics on the next port.
            PortUse(self.ports.authz_metrics + i, LOOPBACK, Ports.flag("authz_metrics"))
            for i in range(1, self.workers) if self.ports.authz_metrics
        ]


def make_plan(args: argparse.Namespace, settings: Settings) -> Plan:
    """The plan from the command line and settings (a port flag not given takes its default)."""
    behind = bool(getattr(args, "behind_tls_proxy", False))
    metrics = getattr(args, "authz_metrics_port", None)
    ports = Ports(
        https=args.https_port, http=args.http_port, authz=args.authz_port, app=args.app_port,
        authz_metrics=settings.authz_metrics_port if metrics is None else metrics,
    )
    # Without an explicit public URL the resource URL must carry the port actually used.
    if "public_url" in settings.model_fields_set:
        public_url = settings.public_url
    elif behind:
        public_url = f"http://localhost:{ports.http}"
    else:
        public_url = f"https://localhost:{ports.https}"
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise UpError("--workers must be at least 1")
    return Plan(
        ports=ports,
        state_dir=Path(args.state_dir or settings.state_dir).resolve(),
        public_url=public_url,
        behind_tls_proxy=behind,
        workers=default_workers() if workers is None else workers,
    )


def default_workers() -> int:
    """One worker per CPU this process may use, at most MAX_DEFAULT_WORKERS (each is a Python process of ~60-100 MB)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Entry point of `mcp-pa up` (see mcp_pa.cli)."""
    settings = get_settings()
    sup = Supervisor(out)
    try:
        plan = make_plan(args, settings)
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
    postgres: EmbeddedPostgres | None = None
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
            dsn = postgres.dsn
        env = _child_env(plan, dsn, api_key)
        for service, what in _services(plan, logs, certs, env, settings):
            sup.start(service, what)
        sup.say(f"\nready in {time.monotonic() - began:.1f}s\n")
        sup.say(client_help(plan.mcp_url, api_key, certs.ca_cert if certs else None))
        failed = sup.watch()
        if failed is not None:
            raise UpError(failed.failure())
        sup.say(f"\nmcp-pa up: {signal.Signals(sup.stop_signal or signal.SIGTERM).name} received, stopping")
        return 0
    except (UpError, StackError, EmbeddedPostgresError, OSError) as exc:  # OSError: an unusable state dir, a missing binary
        print(f"mcp-pa up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        sup.stop_all()
        if postgres is not None:
            postgres.close()
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


def _start_postgres(sup: Supervisor, state_dir: Path) -> EmbeddedPostgres:
    pgdata = state_dir / "pgdata"
    sup.say(f"  starting postgres embedded PostgreSQL in {pgdata}")
    started = time.monotonic()
    postgres = EmbeddedPostgres(pgdata)
    reused = " (reused the one an earlier run left running; stopped on exit)" if postgres.reused else ""
    sup.say(f"  ready    postgres ({time.monotonic() - started:.1f}s){reused}")
    return postgres


def _services(
    plan: Plan, logs: Path, certs: DevCerts | None, env: dict[str, str], settings: Settings
) -> list[tuple[Service, str]]:
    ports = plan.ports
    authz = Service(
        "authz",
        mcp_pa_command("authz", "--listen", f"{LOOPBACK}:{ports.authz}", "--metrics-port", str(ports.authz_metrics), "--workers", str(plan.workers)),
        logs / "authz.log", grpc_serving(ports.authz), env, die_with_parent=True,
    )
    # /readyz answers 200 only once the app reaches PostgreSQL (it starts, not ready, without it).
    app = Service(
        "app",
        mcp_pa_command("app", "--listen", f"{LOOPBACK}:{ports.app}", "--workers", str(plan.workers)),
        logs / "app.log", http_ok(f"http://{LOOPBACK}:{ports.app}{contract.READYZ_PATH}"), env, die_with_parent=True,
    )
    envoy = _envoy_service(plan, logs, certs, settings)
    where = (
        f"plain HTTP on {plan.listen_address}:{ports.http} (TLS by the platform in front)"
        if plan.behind_tls_proxy
        else f"https on {plan.listen_address}:{ports.https}, http on :{ports.http}"
    )
    return [
        (authz, f"gRPC ext_authz on {LOOPBACK}:{ports.authz}, {plan.workers} worker(s)"),
        (app, f"MCP app on {LOOPBACK}:{ports.app}, {plan.workers} worker(s)"),
        (envoy, f"Envoy, {where}"),
    ]


def _envoy_service(plan: Plan, logs: Path, certs: DevCerts | None, settings: Settings) -> Service:
    # Admin on an ephemeral loopback port, reported through a file: one port fewer to configure
    # and no clash between stacks running side by side.
    options = envoy_config.options_from_settings(
        settings,
        public_url=plan.public_url,
        https_port=plan.ports.https,
        http_port=plan.ports.http,
        authz_port=plan.ports.authz,
        app_port=plan.ports.app,
        admin_port=0,
        listen_address=plan.listen_address,
        cert_dir=certs.server_cert.parent if certs else None,
        behind_tls_proxy=plan.behind_tls_proxy,
        # The platform's proxy appends the client address to X-Forwarded-For.
        trusted_hops=1 if plan.behind_tls_proxy else None,
        # One replica: each rate limit applies whole (and no DNS lookups of the Kubernetes peers name).
        replicas=[(LOOPBACK, plan.ports.http if plan.behind_tls_proxy else plan.ports.https)],
        otlp_traces_url=traces_url(),  # OTEL_EXPORTER_OTLP_ENDPOINT: authz and app read it themselves
    )
    config = envoy_config.write_config(plan.state_dir / "envoy.yaml", options)
    envoy = envoy_service("envoy", config, logs / "envoy.log", plan.state_dir / "envoy-admin-address", log_level="info")
    envoy.die_with_parent = True
    return envoy
