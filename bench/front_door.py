"""Part 2: through Envoy with TLS, the upstream being Envoy's own direct response (no app).

Envoys run side by side, identical but for authentication: none (the ceiling), jwt_authn
(in-process, same token), ext_authz to the floor server, ext_authz to our service (1 worker;
and 2 workers with Envoy opening several connections to reach both). Each case
is measured at saturation and at fixed rates; the latency it adds is its percentile minus
the no-auth Envoy's at the same rate.
"""

from __future__ import annotations

import statistics

from bench import envoy_variants
from bench.context import AUDIENCE, Bench, Row, assert_no_refusals, paired_ratio, refusals
from bench.load import H2Load
from bench.stack import Authz, Stack, ports
from bench.traffic import bearer

SATURATION_CLIENTS, SATURATION_STREAMS = 8, 8
SATURATION = "2 Envoy TLS saturation"
RATE_STREAMS = 64  # in flight at most; at a fixed rate only a few are
# Three short rounds per rate: a p99 is the ~20th worst of 2,000 calls, and one scheduler stall
# on a shared machine moves it; the median of three rounds does not follow one stall.
RATE_ROUNDS = 3
RATE_DURATION = 2.0
RATES = (500, 1000)
CASES = {
    "none": "Envoy, no auth (ceiling)",
    "jwt_authn": "Envoy + jwt_authn (in-process)",
    "floor": "Envoy + ext_authz floor server",
    "ours": "Envoy + our ext_authz (cached JWT)",
    "ours_2w": "Envoy + our ext_authz, 2 workers, 8 streams/conn",
}
STREAMS_PER_AUTHZ_CONNECTION = 8


def start_envoys(bench: Bench, stack: Stack, floor_port: int, ours: Authz, ours_2w: Authz) -> dict[str, int]:
    """The variants of CASES; their HTTPS ports by case."""
    jwt = envoy_variants.JwtAuthn(bench.rs_issuer.issuer, AUDIENCE, bench.rs_issuer.jwks())
    found: dict[str, int] = {}
    for case in CASES:
        https, http, admin, app = ports(4)
        authz = {"floor": floor_port, "ours": ours.port, "ours_2w": ours_2w.port}.get(case, floor_port)
        auth: envoy_variants.Auth = {"none": "none", "jwt_authn": "jwt_authn"}.get(case, "ext_authz")  # type: ignore[assignment]
        config = envoy_variants.render(envoy_variants.Ports(https, http, admin, authz, app), bench.certs.server_cert.parent,
                                       auth=auth, jwt=jwt,
                                       authz_streams_per_connection=STREAMS_PER_AUTHZ_CONNECTION if case == "ours_2w" else None)
        stack.envoy(f"envoy-{case}", config, admin, bench.out)
        found[case] = https
    return found


def run(bench: Bench, stack: Stack, floor_port: int, ours: Authz, ours_2w: Authz) -> None:
    https = start_envoys(bench, stack, floor_port, ours, ours_2w)
    headers = [f"{k}: {v}" for k, v in bearer(bench.token).items()]

    def load(case: str, rate: int | None = None) -> H2Load:
        url = f"https://127.0.0.1:{https[case]}/mcp"
        if rate is None:
            return H2Load(url, headers, clients=SATURATION_CLIENTS, streams=SATURATION_STREAMS,
                          duration=bench.duration, warm_up=bench.warm_up)
        # One connection whose timer sends a request every 1/rate s: evenly spaced arrivals.
        # Several clients' timers fire together and turn a fixed rate into bursts.
        return H2Load(url, headers, clients=1, streams=RATE_STREAMS, duration=min(bench.duration, RATE_DURATION),
                      warm_up=bench.warm_up, rps_per_client=rate)

    metrics_ports = ours.metrics_ports + ours_2w.metrics_ports
    before = refusals(metrics_ports)
    saturation = bench.interleave({case: (lambda c=case: bench.h2load(load(c))) for case in CASES})
    fixed = {rate: bench.interleave({case: (lambda c=case, r=rate: bench.h2load(load(c, r))) for case in CASES},
                                    rounds=min(bench.rounds, RATE_ROUNDS))
             for rate in RATES}
    assert_no_refusals(metrics_ports, before, "part 2 through Envoy")

    note = f"h2load -c {SATURATION_CLIENTS} -m {SATURATION_STREAMS}, {bench.duration:g} s x {bench.rounds}"
    for case, label in CASES.items():
        reference = {"ours": ("floor via Envoy", saturation["floor"]), "ours_2w": ("floor via Envoy", saturation["floor"]),
                     "none": ("", [])}.get(case, ("no auth", saturation["none"]))
        bench.add_measured(SATURATION, label, saturation[case], note, reference[1], reference[0])
    bench.add(Row(SATURATION, "ours vs jwt_authn", ratio=paired_ratio(saturation["ours"], saturation["jwt_authn"]),
                  reference="jwt_authn", note="req/s ratio; a Python ext_authz pays a gRPC round trip jwt_authn does not"))
    for rate in RATES:
        base = fixed[rate]["none"]
        note = f"h2load -c 1 -m {RATE_STREAMS} --rps {rate}, {min(bench.duration, RATE_DURATION):g} s x {len(base)}"
        for case, label in CASES.items():
            row = bench.add_measured(f"2 Envoy TLS {rate} req/s", label, fixed[rate][case], note)
            if case == "none":
                continue
            # Added latency, paired per round like the throughput ratios.
            row.value = statistics.median(m.p99_ms - b.p99_ms for m, b in zip(fixed[rate][case], base, strict=True))
            row.unit = "ms added p99"
            added_p50 = statistics.median(m.p50_ms - b.p50_ms for m, b in zip(fixed[rate][case], base, strict=True))
            row.note = f"added p50 {added_p50:+.3f} ms; {note}"
            if row.rps is not None and row.rps < 0.95 * rate:
                row.note += f"; rate NOT sustained ({row.rps:.0f} req/s)"
