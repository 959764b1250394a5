"""`--workers N` behind Envoy: every authz and app worker takes a share of the tool calls.

A real Envoy (the canonical config on loopback ports) in front of `mcp-pa authz --workers 2` and
`mcp-pa app --workers 2`; the Checks each authz worker decided come from its own metrics port,
the app workers' shares from the CPU time each worker process used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import ssl
import urllib.request
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest

from mcp_pa.core import contract
from mcp_pa.core.settings import Settings
from mcp_pa.health import grpc_serving, http_ok
from mcp_pa.up.certs import ensure_dev_certs
from mcp_pa.up.envoy_config import RateLimit
from mcp_pa.up.supervisor import MAX_DEFAULT_WORKERS, UpError, make_plan
from tests.support.processes import free_ports, mcp_pa_command, scratch_dir, service
from tests.support.stack import start_envoy

WORKERS = 2
CALLS = 1200
CONCURRENCY = 24
MIN_SHARE = 0.05  # expected ~1/2 each; an idle worker would get 0
UNLIMITED = RateLimit(1_000_000, 1)
ALLOWED = re.compile(r'^mcp_pa_authz_checks_total\{[^}]*result="allow"[^}]*\} ([0-9.e+]+)$', re.M)
WHOAMI_CALLS = re.compile(r'^mcp_app_tool_calls_total\{(?=[^}]*tool="whoami")(?=[^}]*outcome="success")[^}]*\} ([0-9.e+]+)$', re.M)


def allowed_checks(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        return sum(int(float(v)) for v in ALLOWED.findall(reply.read().decode()))


def whoami_calls_scraped(app_port: int) -> int:
    """What one scrape of the app's /metrics says about successful whoami calls (whichever worker answers it)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{app_port}{contract.METRICS_PATH}", timeout=10) as reply:
        return sum(int(float(v)) for v in WHOAMI_CALLS.findall(reply.read().decode()))


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class Stack:
    """Envoy → authz (N workers) → app (N workers) → PostgreSQL, all real."""

    def __init__(self, root: Path, dsn: str) -> None:
        authz_port, app_port, metrics_port = free_ports(3)
        self.metrics_ports = [metrics_port + i for i in range(WORKERS)]
        self.api_key = contract.API_KEY_PREFIX + secrets.token_urlsafe(32)
        public_url = "https://localhost"
        env = {"MCP_HTTP_API_KEY": self.api_key, "MCP_HTTP_PUBLIC_URL": public_url, "MCP_HTTP_ENVIRONMENT": "development",
               "MCP_HTTP_LOG_LEVEL": "WARNING"}
        self.app_port = app_port
        self.authz = service("authz", mcp_pa_command("authz", "--listen", f"127.0.0.1:{authz_port}", "--metrics-port", str(metrics_port),
                                                     "--workers", str(WORKERS)), root / "authz.log", grpc_serving(authz_port), env)
        self.app = service("app", mcp_pa_command("app", "--listen", f"127.0.0.1:{app_port}", "--workers", str(WORKERS)), root / "app.log",
                           http_ok(f"http://127.0.0.1:{app_port}{contract.READYZ_PATH}"), {**env, "MCP_HTTP_DATABASE_CONNECTION_STRING": dsn})
        self.authz.run(120)
        try:
            self.app.run(120)
            certs = ensure_dev_certs(root / "tls")
            self.envoy = start_envoy(root / "envoy", certs, authz_port=authz_port, app_port=app_port,
                                     per_tenant_limit=UNLIMITED, per_address_limit=UNLIMITED)
        except BaseException:
            self.stop()
            raise
        self.ca = certs.ca_cert

    def app_workers(self) -> list[psutil.Process]:
        """uvicorn's worker processes (the supervisor's Python children; not its resource tracker)."""
        children = psutil.Process(self.app.pid).children()
        return [c for c in children if "multiprocessing.resource_tracker" not in " ".join(c.cmdline())]

    def stop(self) -> None:
        for part in (getattr(self, "envoy", None), self.app, self.authz):
            if part is not None:
                part.stop()


@pytest.fixture(scope="module")
def stack(pg_dsn: str) -> Iterator[Stack]:
    with scratch_dir("mcp-pa-workers-") as root:
        running = Stack(root, pg_dsn)
        try:
            yield running
        finally:
            running.stop()


async def call_whoami(stack: Stack, calls: int) -> list[int]:
    url = f"https://localhost:{stack.envoy.https_port}{contract.MCP_PATH}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    headers = {contract.HEADER_API_KEY: stack.api_key, "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18",
               contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "whoami"}
    statuses: list[int] = []
    queue = iter(range(calls))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(stack.ca)), timeout=60, limits=limits) as client:

        async def worker() -> None:
            for _ in queue:
                reply = await client.post(url, json=body, headers=headers)
                statuses.append(reply.status_code)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses


def test_tool_calls_through_envoy_reach_every_authz_and_app_worker(stack: Stack) -> None:
    workers = stack.app_workers()
    assert len(workers) == WORKERS, [w.cmdline() for w in workers]
    checks_before = [allowed_checks(port) for port in stack.metrics_ports]
    cpu_before = [cpu_seconds(w) for w in workers]
    statuses = asyncio.run(call_whoami(stack, CALLS))
    assert statuses.count(200) == CALLS, {s: statuses.count(s) for s in set(statuses)}
    checks = [allowed_checks(port) - before for port, before in zip(stack.metrics_ports, checks_before, strict=True)]
    cpu = [cpu_seconds(w) - before for w, before in zip(workers, cpu_before, strict=True)]
    print(f"Checks per authz worker: {checks}; CPU seconds per app worker: {[round(c, 2) for c in cpu]}")
    assert sum(checks) == CALLS
    assert min(checks) >= MIN_SHARE * CALLS, f"an authz worker took almost no Checks: {checks}"
    assert min(cpu) >= MIN_SHARE * sum(cpu), f"an app worker took almost no calls (CPU s {cpu})"


def test_every_scrape_of_the_app_metrics_counts_the_calls_of_every_worker(stack: Stack) -> None:
    before = whoami_calls_scraped(stack.app_port)
    statuses = asyncio.run(call_whoami(stack, 200))
    assert statuses.count(200) == 200
    # Twelve scrapes on fresh connections land on both workers; each must report the sum.
    scraped = [whoami_calls_scraped(stack.app_port) - before for _ in range(12)]
    assert scraped == [200] * 12, f"a scrape saw only one worker's calls: {scraped}"


def test_app_workers_stop_with_the_app(stack: Stack, pg_dsn: str) -> None:
    workers = stack.app_workers()
    stack.app.stop()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"app workers left running: {[p.pid for p in alive]}"


def test_up_runs_one_worker_per_cpu_by_default_and_refuses_zero() -> None:
    args = argparse.Namespace(https_port=1, http_port=2, authz_port=3, app_port=4, authz_metrics_port=5, state_dir="/tmp/x", workers=None)
    assert make_plan(args, Settings()).workers == min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS)
    assert make_plan(argparse.Namespace(**{**vars(args), "workers": 3}), Settings()).workers == 3
    with pytest.raises(UpError, match="--workers must be at least 1"):
        make_plan(argparse.Namespace(**{**vars(args), "workers": 0}), Settings())
