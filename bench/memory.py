"""Part 4: the authz service's resident memory with 100,000 distinct identities in its cache.

A fresh single-process authz is filled through its real Check path with 100,000 distinct
EdDSA tokens (distinct user, email and name each), so every entry is what production caches:
the identity and its prebuilt OK response. VmRSS is read before and after.
"""

from __future__ import annotations

import asyncio
import time

from bench.context import AUDIENCE, Bench, Row, refusals
from bench.load import BenchError
from bench.stack import Stack, ports, rss_mb
from bench.traffic import bearer, check_request, drive

IDENTITIES = 100_000
FILL_CONCURRENCY = 128
CHUNK = 10_000  # mint and send in chunks so the tokens and bodies never all sit in memory at once


def run(bench: Bench, stack: Stack) -> None:
    (port,) = ports(1)
    authz = stack.authz("authz-memory", port, env=bench.authz_env())
    warm = check_request(bearer(bench.ed_signer.tokens(AUDIENCE, 1, start=IDENTITIES)[0]))
    asyncio.run(drive(authz.target, [warm], 1, 1))  # JWKS fetched, every code path imported
    baseline = rss_mb(authz.proc.pid)
    started = time.perf_counter()
    fill_seconds = 0.0
    for start in range(0, IDENTITIES, CHUNK):
        bodies = [check_request(bearer(t)) for t in bench.ed_signer.tokens(AUDIENCE, CHUNK, start=start)]
        began = time.perf_counter()
        asyncio.run(drive(authz.target, bodies, FILL_CONCURRENCY, len(bodies)))
        fill_seconds += time.perf_counter() - began
    if refusals(authz.metrics_ports):
        raise BenchError("memory fill: some checks were refused")
    filled = rss_mb(authz.proc.pid)
    per_identity = (filled - baseline) * 1e6 / IDENTITIES
    bench.add(Row("4 memory", "authz RSS, started and warm", value=baseline, unit="MB"))
    bench.add(Row("4 memory", f"authz RSS, {IDENTITIES:,} cached identities", value=filled, unit="MB",
                  note=f"{per_identity:.0f} bytes per identity; filled in {fill_seconds:.0f} s of Checks "
                       f"({time.perf_counter() - started:.0f} s with minting)"))
