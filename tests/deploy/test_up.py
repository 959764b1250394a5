"""`mcp-pa up` for real: PostgreSQL, authz, app and Envoy from one command, on free ports."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import ssl
import stat
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import httpx
import psutil
import pytest

from mcp_pa.core import contract
from mcp_pa.up.stack import Ports
from tests.deploy.conftest import alive, alive_processes, clean_env, list_tool_names
from tests.support.processes import REPO, Service, StackError, free_port, mcp_pa_command, scratch_dir

START_TIMEOUT = 120.0  # two busy cores shared with other suites: generous, never asserted on


READY_LINE = "Ctrl-C stops everything"  # the last line `up` prints once every part is ready


@dataclass
class Up:
    """A running `mcp-pa up`: the service, its ports, and what it printed (for clients, too)."""

    service: Service
    state_dir: Path
    ports: Ports
    seconds_to_ready: float = 0.0
    children: list[psutil.Process] = field(default_factory=list)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.service.proc is not None
        return self.service.proc

    @property
    def https_port(self) -> int:
        return self.ports.https

    @property
    def http_port(self) -> int:
        return self.ports.http

    @property
    def lines(self) -> list[str]:
        return self.service.log.read_text(errors="replace").splitlines()

    def printed(self, prefix: str) -> str:
        lines = self.lines
        found = [line[len(prefix):].strip() for line in lines if line.startswith(prefix)]
        assert found, f"`mcp-pa up` never printed {prefix!r}; output:\n" + "\n".join(lines)
        return found[0]

    @property
    def ca(self) -> Path:
        match = re.search(r"development CA: (\S+)", "\n".join(self.lines))
        assert match, "no CA path printed"
        return Path(match.group(1))


@contextlib.contextmanager
def running_up(
    state_dir: Path, *flags: str, mcp_pa: Sequence[str] = (), cwd: Path = REPO, ports: Ports | None = None, **env: str,
) -> Iterator[Up]:
    """`mcp-pa up` on free ports until ready; afterwards nothing it started is left running.

    `mcp_pa` is the command to run (default: this interpreter's), `cwd` where to run it.
    """
    ports = ports or Ports.free()
    command = [*(mcp_pa or mcp_pa_command()), "up", "--state-dir", str(state_dir), *ports.up_flags(), *flags]
    log = state_dir.with_name(f"{state_dir.name}-up.log")
    service = Service("mcp-pa up", command, log, lambda: READY_LINE in log.read_text(errors="replace"), clean_env(**env), cwd)
    running = Up(service, state_dir, ports)
    try:
        try:
            running.seconds_to_ready = service.start().wait_ready(START_TIMEOUT)  # process start to banner
        except StackError:
            pytest.fail("`mcp-pa up` did not get ready:\n" + (log.read_text(errors="replace") if log.exists() else "(no output)"))
        running.children = psutil.Process(running.proc.pid).children(recursive=True)
        yield running
    finally:
        service.stop(timeout=30)  # `up` alone in its group: it stops its children itself
        for child in alive_processes(running.children):  # a test failed before stopping it: leave nothing behind
            child.kill()


@pytest.fixture(scope="module")
def state_root() -> Iterator[Path]:
    with scratch_dir("mcp-pa-deploy-") as root:
        yield root


@pytest.fixture(scope="module")
def up(state_root: Path) -> Iterator[Up]:
    with running_up(state_root / "up", ports=Ports.free(authz_metrics=True)) as running:
        yield running


def test_up_prints_the_mcp_url_and_the_api_key(up: Up) -> None:
    assert up.printed("MCP URL:") == f"https://localhost:{up.https_port}{contract.MCP_PATH}"
    assert up.printed("API key:").startswith(contract.API_KEY_PREFIX)
    assert up.printed("  claude mcp add --transport http").startswith("mcp-pa https://localhost:")
    assert any("NODE_EXTRA_CA_CERTS=" in line for line in up.lines)
    print(f"mcp-pa up: ready in {up.seconds_to_ready:.1f}s (measured by the test, process start to banner)")


def test_dev_api_key_is_kept_in_the_state_dir_with_mode_0600(up: Up) -> None:
    key_file = up.state_dir / "api-key"
    assert key_file.read_text().strip() == up.printed("API key:")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


async def test_tools_list_through_envoy_with_tls_and_the_printed_key(up: Up) -> None:
    names = await list_tool_names(up.printed("MCP URL:"), up.printed("API key:"), up.ca)
    assert names == set(contract.TOOL_PERMISSIONS)


def test_request_without_the_key_is_answered_401_with_resource_metadata(up: Up) -> None:
    response = httpx.post(
        up.printed("MCP URL:"), verify=ssl.create_default_context(cafile=str(up.ca)), timeout=30,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_wrong_key_is_answered_401(up: Up) -> None:
    response = httpx.post(
        up.printed("MCP URL:"), verify=ssl.create_default_context(cafile=str(up.ca)), timeout=30,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={contract.HEADER_API_KEY: contract.API_KEY_PREFIX + "x" * 43, "accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401


def test_the_authz_metrics_port_flag_is_where_the_authz_service_serves_metrics(up: Up) -> None:
    assert up.ports.authz_metrics != 0
    response = httpx.get(f"http://127.0.0.1:{up.ports.authz_metrics}/metrics", timeout=10, trust_env=False)
    assert response.status_code == 200
    assert "mcp_pa_authz_checks_total" in response.text


def test_sigterm_stops_every_child_and_postgres_leaving_no_process(up: Up) -> None:
    names = {" ".join(p.cmdline()[:4]) for p in up.children}
    assert any("authz" in n for n in names) and any(" app" in n for n in names) and any("envoy" in n for n in names)
    postmaster = int((up.state_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    processes = [*up.children, psutil.Process(postmaster)]

    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(60) == 0
    deadline = time.monotonic() + 10
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(processes) == []
    assert "mcp-pa up: stopped" in up.lines[-1]
    with socket.socket() as s:  # the https port is free again
        s.bind(("127.0.0.1", up.https_port))


def _up_refused(state_dir: Path, ports: Ports) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mcp_pa_command("up", "--state-dir", str(state_dir), *ports.up_flags()),
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60,
    )


def test_a_port_in_use_is_refused_naming_the_flag_to_change(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _up_refused(tmp_path / "s", replace(Ports.free(), app=port))
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "--app-port" in result.stderr
    assert not (tmp_path / "s").exists()  # nothing was started or written


def test_every_busy_port_is_named_with_its_flag_at_once(tmp_path: Path) -> None:
    ports = Ports.free(authz_metrics=True)
    busy = {ports.https: "--https-port", ports.app: "--app-port", ports.authz_metrics: "--authz-metrics-port"}
    with contextlib.ExitStack() as held:
        for port in busy:
            listener = held.enter_context(socket.socket())
            listener.bind(("127.0.0.1", port))
            listener.listen()
        result = _up_refused(tmp_path / "s", ports)
    assert result.returncode == 1
    for port, flag in busy.items():
        assert re.search(rf"port {port} \(127\.0\.0\.1\) is already in use.*{flag}", result.stderr), result.stderr
    assert f"port {ports.http} " not in result.stderr and f"port {ports.authz} " not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_port_given_twice_is_refused_naming_both_flags(tmp_path: Path) -> None:
    ports = Ports.free(authz_metrics=True)
    result = _up_refused(tmp_path / "s", replace(ports, authz_metrics=ports.authz))
    assert result.returncode == 1
    assert f"--authz-metrics-port and --authz-port are both {ports.authz}" in result.stderr
    assert not (tmp_path / "s").exists()


def test_production_without_a_tls_proxy_is_refused_instead_of_serving_the_dev_certificate(tmp_path: Path) -> None:
    result = subprocess.run(
        mcp_pa_command("up", "--state-dir", str(tmp_path / "s"), "--https-port", str(free_port())),
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env=clean_env(MCP_HTTP_ENVIRONMENT="production", MCP_HTTP_PUBLIC_URL="https://mcp.example.com",
                      MCP_HTTP_DATABASE_CONNECTION_STRING="postgresql://mcp@db.example.com/mcp"),
    )
    assert result.returncode == 1
    assert "--behind-tls-proxy" in result.stderr
    assert not (tmp_path / "s").exists()


def test_an_unusable_state_dir_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = _up_refused(tmp_path / "file" / "state", Ports.free())
    assert result.returncode == 1
    assert "Not a directory" in result.stderr and "Traceback" not in result.stderr


def test_a_child_that_dies_stops_the_stack_and_is_named_with_its_log(state_root: Path) -> None:
    with running_up(state_root / "dies") as stack:
        app = next(p for p in stack.children if "app" in p.cmdline()[3:4])
        app.kill()
        assert stack.proc.wait(60) == 1
        output = "\n".join(stack.lines)
        assert re.search(r"app was killed by SIGKILL; last lines of \S+app\.log", output), output
        assert "stopping envoy" in output and "stopping authz" in output
        assert alive(stack.children) == []


@pytest.fixture(scope="module")
def behind_proxy(state_root: Path) -> Iterator[Up]:
    with running_up(state_root / "behind", "--behind-tls-proxy") as running:
        yield running


async def test_behind_a_tls_proxy_mcp_is_served_in_plain_http_with_hsts_kept(behind_proxy: Up) -> None:
    url = f"http://127.0.0.1:{behind_proxy.http_port}{contract.MCP_PATH}"
    assert behind_proxy.printed("MCP URL:") == f"http://localhost:{behind_proxy.http_port}{contract.MCP_PATH}"
    key = behind_proxy.printed("API key:")
    assert await list_tool_names(url, key, None) == set(contract.TOOL_PERMISSIONS)
    refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30)
    assert refused.status_code == 401
    assert refused.headers["strict-transport-security"].startswith("max-age=")
    with socket.socket() as s:  # no TLS listener and no dev certificate in this mode
        assert s.connect_ex(("127.0.0.1", behind_proxy.https_port)) != 0
    assert not (behind_proxy.state_dir / "tls").exists()


def test_up_killed_outright_still_leaves_no_child(behind_proxy: Up) -> None:
    stack = behind_proxy
    stack.proc.kill()  # SIGKILL: no handler runs; the children's parent-death signal does the work
    stack.proc.wait(10)
    deadline = time.monotonic() + 30
    while alive(stack.children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(stack.children) == []
    # PostgreSQL is a daemon by design (the next `up` reuses it); stop it as that `up` would.
    postmaster = psutil.Process(int((stack.state_dir / "pgdata" / "postmaster.pid").read_text().split()[0]))
    postmaster.terminate()
    postmaster.wait(30)
