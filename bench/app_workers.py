"""Part 3b: the app's `tools/call` against the bare MCP SDK floor, and 1 vs 2 workers, in one run.

Direct over HTTP/1.1 (as Envoy reaches the app): the SDK floor's trivial tool, then our `whoami`
(identity, audited transaction) with `mcp-pa app --workers 1` and `--workers 2`, and once more
with 1 worker on uvicorn's pure-Python h11 parser (`--http h11`, what the app used before
httptools: the cut in our per-call cost, before and after in the same run). Then the full
path through Envoy (TLS) → authz → app → PostgreSQL with 1 and with 2 workers each. Every case
also records the CPU time per call summed over every server process (Envoy, authz, app and
their workers), so the per-call cost reads the same whatever the machine's other load.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from bench import envoy_variants
from bench.context import Bench, Row
from bench.load import H2Load, Measurement
from bench.mcp_path import _headers
from bench.stack import Stack, cpu_seconds, ports
from mcp_pa.core import contract
from mcp_pa.core.settings import ENV_PREFIX
from mcp_pa.health import http_ok
from mcp_pa.up.stack import port_open

DIRECT, FULL = "3 app direct HTTP/1.1", "3 full MCP path, workers"
CLIENTS = 4
H11_CASE = "before: whoami, app 1 worker, h11 parser"
DIRECT_ROUNDS_FACTOR = 2
IDENTITY = contract.Identity("bench-user", "bench", frozenset({contract.PERMISSION_READ, contract.PERMISSION_WRITE}), "api_key")


def _body(tool: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}).encode()


def paired_cpu_ratio(runs: Sequence[Measurement], reference: Sequence[Measurement]) -> float:
    """Median over rounds of CPU per call / the reference's, each pair measured back to back."""
    return statistics.median(a.cpu_us / b.cpu_us for a, b in zip(runs, reference, strict=True) if a.cpu_us and b.cpu_us)


def _measured(bench: Bench, load: H2Load, pids: Sequence[int]) -> Callable[[], Measurement]:
    """One h2load run with the CPU time per call of every process in `pids` (and their children)."""
    def run() -> Measurement:
        before = sum(cpu_seconds(pid) for pid in pids)
        measured = bench.h2load(load)
        share = bench.duration / (bench.duration + bench.warm_up)  # warm-up calls cost CPU but are not counted
        return replace(measured, cpu_us=(sum(cpu_seconds(pid) for pid in pids) - before) * share / measured.requests * 1e6)
    return run


def run(bench: Bench, stack: Stack) -> None:
    dsn = stack.postgres(bench.out / "pgdata")
    floor_port, app1_port, app2_port, h11_port, authz1_port, authz2_port = ports(6)
    floor = stack.process("sdk-floor", [sys.executable, "-m", "bench.sdk_floor", "--listen", f"127.0.0.1:{floor_port}"], port_open(floor_port))
    app_env = {f"{ENV_PREFIX}DATABASE_CONNECTION_STRING": dsn, f"{ENV_PREFIX}PUBLIC_URL": "https://localhost:8443", f"{ENV_PREFIX}LOG_LEVEL": "WARNING"}
    apps = {}
    for key, workers, port, http in ((1, 1, app1_port, "httptools"), (2, 2, app2_port, "httptools"), ("h11", 1, h11_port, "h11")):
        ready = http_ok(f"http://127.0.0.1:{port}{contract.READYZ_PATH}")
        command = [sys.executable, "-m", "mcp_pa", "app", "--listen", f"127.0.0.1:{port}", "--workers", str(workers), "--http", http]
        apps[key] = (port, stack.process(f"app-{key}" if key == "h11" else f"app-{workers}w", command, ready, app_env))
    authz = {1: stack.authz("authz-b1w", authz1_port, env=bench.authz_env()), 2: stack.authz("authz-b2w", authz2_port, workers=2, env=bench.authz_env())}

    common = ["content-type: application/json", "accept: application/json, text/event-stream", "mcp-protocol-version: 2025-06-18"]
    (bench.out / "ping.json").write_bytes(_body("ping"))
    (bench.out / "whoami.json").write_bytes(_body("whoami"))
    identity = [f"{k}: {v}" for k, v in IDENTITY.to_headers().items()]

    def direct(port: int, body: str, headers: list[str]) -> H2Load:
        return H2Load(f"http://127.0.0.1:{port}{contract.MCP_PATH}", headers, body=bench.out / body, clients=CLIENTS, streams=1,
                      duration=bench.duration, warm_up=bench.warm_up, h1=True)

    cases = {
        "floor: bare MCP SDK, trivial tool, 1 process": _measured(bench, direct(floor_port, "ping.json", common), [floor.pid]),
        "ours: whoami, app 1 worker": _measured(bench, direct(app1_port, "whoami.json", [*common, *identity]), [apps[1][1].pid]),
        "ours: whoami, app 2 workers": _measured(bench, direct(app2_port, "whoami.json", [*common, *identity]), [apps[2][1].pid]),
        H11_CASE: _measured(bench, direct(h11_port, "whoami.json", [*common, *identity]), [apps["h11"][1].pid]),
    }
    # Twice the usual rounds here and below: on a shared machine single rounds of these cases moved by 3x.
    rounds = DIRECT_ROUNDS_FACTOR * bench.rounds
    results = bench.interleave(cases, rounds=rounds)
    note = f"h2load --h1 -c {CLIENTS} -m 1, {bench.duration:g} s x {rounds}; CPU summed over the process and its workers"
    floor_runs = results.pop("floor: bare MCP SDK, trivial tool, 1 process")
    h11_runs = results.pop(H11_CASE)
    after = results["ours: whoami, app 1 worker"]
    bench.add_measured(DIRECT, "floor: bare MCP SDK, trivial tool, 1 process", floor_runs, note)
    bench.add_measured(DIRECT, H11_CASE, h11_runs, note, reference=after, reference_name="httptools (after)")
    bench.add(Row(DIRECT, "cut: app CPU per whoami, httptools / h11 (after / before)", value=round(paired_cpu_ratio(after, h11_runs), 3), unit="×",
                  note=f"median over {rounds} back-to-back pairs of CPU µs per call"))
    for case, runs in results.items():
        bench.add_measured(DIRECT, case, runs, note, reference=floor_runs, reference_name="SDK floor")

    full = {}
    for workers in (1, 2):
        https, http, admin = ports(3)
        config = envoy_variants.render(envoy_variants.Ports(https, http, admin, authz[workers].port, apps[workers][0]),
                                       bench.certs.server_cert.parent, direct_response=False)
        envoy = stack.envoy(f"envoy-{workers}w", config, admin, bench.out)
        headers = [f"{k}: {v}" for k, v in _headers(bench, "whoami").items()]
        load = H2Load(f"https://127.0.0.1:{https}{contract.MCP_PATH}", headers, body=bench.out / "whoami.json", clients=CLIENTS, streams=4,
                      duration=bench.duration, warm_up=bench.warm_up)
        full[f"whoami via Envoy, {workers} authz + {workers} app worker(s)"] = _measured(
            bench, load, [envoy.pid, authz[workers].proc.pid, apps[workers][1].pid])
    results = bench.interleave(full, rounds=rounds)
    note = f"Envoy TLS (1 thread) → authz → app → PostgreSQL; h2load -c {CLIENTS} -m 4, {bench.duration:g} s x {rounds}; CPU: Envoy+authz+app"
    (one_name, one_runs), (two_name, two_runs) = results.items()
    bench.add_measured(FULL, one_name, one_runs, note, reference=floor_runs, reference_name="SDK floor")
    bench.add_measured(FULL, two_name, two_runs, note, reference=one_runs, reference_name="1 worker each")
