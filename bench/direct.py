"""Part 1: Check straight over gRPC (h2c), our service against the bare grpc.aio floor.

Cached paths (one API key, one JWT, repeated) run under h2load; a first-seen JWT needs a new
body per request, so that case is driven by `traffic.drive` (a grpc.aio client) and compared
with the floor under the same client, since that client is itself a bottleneck.
"""

from __future__ import annotations

import asyncio

from bench.context import AUDIENCE, Bench, assert_no_refusals, refusals
from bench.load import GRPC_CONTENT_HEADERS, H2Load, grpc_frame
from bench.stack import Authz
from bench.traffic import CHECK_METHOD, api_key, bearer, check_request, drive, require_allowed, rs256_tokens

CLIENTS, STREAMS = 4, 16  # 64 Checks in flight
DRIVE_CONCURRENCY = 64
PART = "1 direct gRPC"


def _h2load(bench: Bench, port: int, body_name: str) -> H2Load:
    return H2Load(f"http://127.0.0.1:{port}{CHECK_METHOD}", headers=GRPC_CONTENT_HEADERS, body=bench.out / body_name,
                  clients=CLIENTS, streams=STREAMS, duration=bench.duration, warm_up=bench.warm_up)


def run(bench: Bench, floor_port: int, one: Authz, two: Authz) -> None:
    bodies = {"apikey.bin": check_request(api_key(bench.api_key)), "jwt.bin": check_request(bearer(bench.token))}
    for name, body in bodies.items():
        (bench.out / name).write_bytes(grpc_frame(body))
        for target in (one.target, two.target):
            require_allowed(target, body, f"{name} against {target}")
    ports = one.metrics_ports + two.metrics_ports
    before = refusals(ports)

    results = bench.interleave({
        "floor": lambda: bench.h2load(_h2load(bench, floor_port, "jwt.bin")),
        "apikey_1w": lambda: bench.h2load(_h2load(bench, one.port, "apikey.bin")),
        "jwt_1w": lambda: bench.h2load(_h2load(bench, one.port, "jwt.bin")),
        "jwt_2w": lambda: bench.h2load(_h2load(bench, two.port, "jwt.bin")),
    })
    assert_no_refusals(ports, before, "part 1 cached checks")
    note = f"h2load -c {CLIENTS} -m {STREAMS}, {bench.duration:g} s x {bench.rounds}"
    floor = results["floor"]
    bench.add_measured(PART, "floor: bare grpc.aio Check, constant OK", floor, note)
    bench.add_measured(PART, "ours, cached API key, 1 worker", results["apikey_1w"], note, floor, "floor")
    bench.add_measured(PART, "ours, cached JWT, 1 worker", results["jwt_1w"], note, floor, "floor")
    bench.add_measured(PART, "ours, cached JWT, 2 workers", results["jwt_2w"], note, floor, "floor")

    pool = rs256_tokens(bench.rs_issuer, AUDIENCE, 200 if bench.quick else 3000)
    fresh = [check_request(bearer(token)) for token in pool]
    floor_driven = [asyncio.run(drive(f"127.0.0.1:{floor_port}", fresh, DRIVE_CONCURRENCY, len(fresh)))]
    first_seen = [asyncio.run(drive(one.target, fresh, DRIVE_CONCURRENCY, len(fresh)))]
    note = f"grpc.aio client, {len(fresh)} distinct RS256 tokens, {DRIVE_CONCURRENCY} in flight"
    bench.add_measured(PART, "floor, grpc.aio client", floor_driven, note)
    bench.add_measured(PART, "ours, first-seen JWT (RS256 verify), 1 worker", first_seen, note, floor_driven, "floor, grpc.aio client")
