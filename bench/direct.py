"""Part 1: Check straight over gRPC (h2c), our service against the bare grpc.aio floor.

Cached paths (one API key, one JWT, repeated) run under h2load; a first-seen JWT needs a new
body per request, so that case is driven by `traffic.drive` (a grpc.aio client) and compared
with the floor under the same client, since that client is itself a bottleneck.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Callable

from bench.context import AUDIENCE, Bench, assert_no_refusals, refusals
from bench.load import GRPC_CONTENT_HEADERS, H2Load, Measurement, grpc_frame
from bench.stack import Authz, cpu_seconds
from bench.traffic import CHECK_METHOD, api_key, bearer, check_request, drive, require_allowed, rs256_tokens

CLIENTS, STREAMS = 4, 16  # 64 Checks in flight
DRIVE_CONCURRENCY = 64
PART = "1 direct gRPC"


def _h2load(bench: Bench, port: int, body_name: str) -> H2Load:
    return H2Load(f"http://127.0.0.1:{port}{CHECK_METHOD}", headers=GRPC_CONTENT_HEADERS, body=bench.out / body_name,
                  clients=CLIENTS, streams=STREAMS, duration=bench.duration, warm_up=bench.warm_up)


def _measured(bench: Bench, port: int, pid: int, body_name: str) -> Callable[[], Measurement]:
    """One h2load run that also records the server's CPU time per Check (robust to a busy machine)."""
    def run() -> Measurement:
        before = cpu_seconds(pid)
        measured = bench.h2load(_h2load(bench, port, body_name))
        # The warm-up's requests use CPU too but are not counted: scale by the measured share.
        share = bench.duration / (bench.duration + bench.warm_up)
        return replace(measured, cpu_us=(cpu_seconds(pid) - before) * share / measured.requests * 1e6)
    return run


def run(bench: Bench, floor: tuple[int, int], floor_uvloop: tuple[int, int], one: Authz, two: Authz) -> None:
    """`floor` and `floor_uvloop` are (port, pid) of the two floor servers."""
    bodies = {"apikey.bin": check_request(api_key(bench.api_key)), "jwt.bin": check_request(bearer(bench.token))}
    for name, body in bodies.items():
        (bench.out / name).write_bytes(grpc_frame(body))
        for target in (one.target, two.target):
            require_allowed(target, body, f"{name} against {target}")
    ports = one.metrics_ports + two.metrics_ports
    before = refusals(ports)

    results = bench.interleave({
        "floor": _measured(bench, *floor, "jwt.bin"),
        "floor_uvloop": _measured(bench, *floor_uvloop, "jwt.bin"),
        "apikey_1w": _measured(bench, one.port, one.proc.pid, "apikey.bin"),
        "jwt_1w": _measured(bench, one.port, one.proc.pid, "jwt.bin"),
        "jwt_2w": _measured(bench, two.port, two.proc.pid, "jwt.bin"),
    })
    assert_no_refusals(ports, before, "part 1 cached checks")
    note = f"h2load -c {CLIENTS} -m {STREAMS}, {bench.duration:g} s x {bench.rounds}"
    reference = results["floor"]
    bench.add_measured(PART, "floor: bare grpc.aio Check, constant OK", reference, note)
    bench.add_measured(PART, "floor on uvloop", results["floor_uvloop"], note, reference, "floor")
    bench.add_measured(PART, "ours, cached API key, 1 worker", results["apikey_1w"], note, reference, "floor")
    bench.add_measured(PART, "ours, cached JWT, 1 worker", results["jwt_1w"], note, reference, "floor")
    bench.add_measured(PART, "ours, cached JWT, 2 workers", results["jwt_2w"], note, reference, "floor")

    pool = rs256_tokens(bench.rs_issuer, AUDIENCE, 200 if bench.quick else 3000)
    fresh = [check_request(bearer(token)) for token in pool]
    floor_driven = [asyncio.run(drive(f"127.0.0.1:{floor[0]}", fresh, DRIVE_CONCURRENCY, len(fresh)))]
    first_seen = [asyncio.run(drive(one.target, fresh, DRIVE_CONCURRENCY, len(fresh)))]
    note = f"grpc.aio client, {len(fresh)} distinct RS256 tokens, {DRIVE_CONCURRENCY} in flight"
    bench.add_measured(PART, "floor, grpc.aio client", floor_driven, note)
    bench.add_measured(PART, "ours, first-seen JWT (RS256 verify), 1 worker", first_seen, note, floor_driven, "floor, grpc.aio client")
