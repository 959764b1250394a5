"""`mcp-pa authz` as a real process: health, Check, metrics, logs without secrets, SIGTERM, workers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authz_service.proto import external_auth_pb2_grpc
from mcp_pa.up.stack import Service, all_of, port_open
from tests.authz.conftest import STATIC_KEY
from tests.support.authz import Decision, check_request, decode
from tests.support.processes import REPO, free_port, mcp_pa_command

BAD_TOKEN = "mcp_sk_this-secret-must-never-be-logged"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}
    return {**env, "MCP_HTTP_API_KEY": STATIC_KEY, **extra}


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Process:
    """A started `mcp-pa authz` with its ports and log file."""

    def __init__(self, tmp: Path, workers: int = 1) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        while workers > 1 and not _free(self.metrics_port + 1):
            self.metrics_port = free_port()
        self.log = tmp / f"authz-{self.port}.log"
        cmd = mcp_pa_command("authz", "--listen", f"127.0.0.1:{self.port}", "--metrics-port", str(self.metrics_port), "--workers", str(workers))
        # Each worker serves metrics on metrics_port + its index.
        ready = all_of(port_open(self.port), *(port_open(self.metrics_port + worker) for worker in range(workers)))
        self.service = Service("authz", cmd, self.log, ready, _env(), cwd=REPO).run(60)
        assert self.service.proc is not None
        self.proc: subprocess.Popen[bytes] = self.service.proc

    def check(self, headers: dict[str, str]) -> Decision:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            return decode(external_auth_pb2_grpc.AuthorizationStub(channel).Check(check_request(headers), timeout=20))


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    running = Process(tmp_path_factory.mktemp("authz"))
    yield running
    running.service.stop()


def test_health_service_reports_serving(process: Process) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{process.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "envoy.service.auth.v3.Authorization"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=20)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_check_allows_the_configured_api_key_and_refuses_others(process: Process) -> None:
    assert process.check({"x-api-key": STATIC_KEY}).allowed
    assert process.check({"authorization": f"Bearer {BAD_TOKEN}"}).status == 401


def test_metrics_count_checks_by_result_and_provider(process: Process) -> None:
    # Its own allow (twice: the second is a cache hit) and refusal, whatever ran before it.
    for _ in range(2):
        assert process.check({"x-api-key": STATIC_KEY}).allowed
    assert process.check({"authorization": f"Bearer {BAD_TOKEN}"}).status == 401
    text = httpx.get(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=10).text
    assert 'mcp_pa_authz_checks_total{provider="apikey",result="allow"}' in text
    assert 'mcp_pa_authz_checks_total{provider="apikey",result="401"}' in text
    assert "mcp_pa_authz_check_duration_seconds_bucket" in text
    assert 'mcp_pa_authz_identity_cache_total{outcome="hit"}' in text


def test_sigterm_stops_gracefully_and_logs_never_contain_a_credential(tmp_path: Path) -> None:
    running = Process(tmp_path)
    running.check({"authorization": f"Bearer {BAD_TOKEN}"})
    running.check({"x-api-key": STATIC_KEY})
    os.killpg(running.proc.pid, signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0
    log = running.log.read_text()
    assert "check refused" in log and "authz stopping" in log
    assert BAD_TOKEN not in log and STATIC_KEY not in log


def test_workers_share_one_port_and_stop_together(tmp_path: Path) -> None:
    running = Process(tmp_path, workers=2)
    try:
        for _ in range(4):
            assert running.check({"x-api-key": STATIC_KEY}).allowed
    finally:
        os.killpg(running.proc.pid, signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0


def test_production_refuses_unsafe_settings_at_start() -> None:
    done = subprocess.run(
        mcp_pa_command("authz", "--listen", f"127.0.0.1:{free_port()}"),
        env=_env(MCP_HTTP_ENVIRONMENT="production", MCP_HTTP_API_KEY="short"),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "MCP_HTTP_API_KEY must be at least 32 characters" in done.stderr
    assert "Traceback" not in done.stderr
