"""Part 2: through Envoy with TLS, the upstream being Envoy's own direct response (no app).

Four Envoys run side by side, identical but for authentication: none (the ceiling), jwt_authn
(in-process, same token), ext_authz to the floor server, ext_authz to our service. Each case
is measured at saturation and at fixed rates; the latency it adds is its percentile minus
the no-auth Envoy's at the same rate.
"""

from __future__ import annotations

from bench import envoy_variants
from bench.context import AUDIENCE, Bench, Row, assert_no_refusals, combine, refusals
from bench.load import H2Load
from bench.stack import Authz, Stack, ports
from bench.traffic import bearer

SATURATION_CLIENTS, SATURATION_STREAMS = 8, 8
RATE_CLIENTS = 10
RATES = (500, 1000)
CASES = {
    "none": "Envoy, no auth (ceiling)",
    "jwt_authn": "Envoy + jwt_authn (in-process)",
    "floor": "Envoy + ext_authz floor server",
    "ours": "Envoy + our ext_authz (cached JWT)",
}


def start_envoys(bench: Bench, stack: Stack, floor_port: int, ours: Authz) -> dict[str, int]:
    """The four variants; their HTTPS ports by case."""
    jwt = envoy_variants.JwtAuthn(bench.rs_issuer.issuer, AUDIENCE, bench.rs_issuer.jwks())
    found: dict[str, int] = {}
    for case in CASES:
        https, http, admin, app = ports(4)
        authz = {"floor": floor_port, "ours": ours.port}.get(case, floor_port)
        auth: envoy_variants.Auth = {"none": "none", "jwt_authn": "jwt_authn"}.get(case, "ext_authz")  # type: ignore[assignment]
        config = envoy_variants.render(envoy_variants.Ports(https, http, admin, authz, app), bench.certs.server_cert.parent,
                                       auth=auth, jwt=jwt)
        stack.envoy(f"envoy-{case}", config, admin, bench.out)
        found[case] = https
    return found


def run(bench: Bench, stack: Stack, floor_port: int, ours: Authz) -> None:
    https = start_envoys(bench, stack, floor_port, ours)
    headers = [f"{k}: {v}" for k, v in bearer(bench.token).items()]

    def load(case: str, rate: int | None = None) -> H2Load:
        url = f"https://127.0.0.1:{https[case]}/mcp"
        if rate is None:
            return H2Load(url, headers, clients=SATURATION_CLIENTS, streams=SATURATION_STREAMS,
                          duration=bench.duration, warm_up=bench.warm_up)
        return H2Load(url, headers, clients=RATE_CLIENTS, streams=1, duration=bench.duration, warm_up=bench.warm_up,
                      rps_per_client=rate / RATE_CLIENTS)

    before = refusals(ours.metrics_ports)
    saturation = bench.interleave({case: (lambda c=case: bench.h2load(load(c))) for case in CASES})
    # One round per rate: at a fixed rate the figures are latencies, and one run of each case
    # back to back already shares the machine's state; the budget goes to saturation rounds.
    fixed = {rate: bench.interleave({case: (lambda c=case, r=rate: bench.h2load(load(c, r))) for case in CASES}, rounds=1)
             for rate in RATES}
    assert_no_refusals(ours.metrics_ports, before, "part 2 through Envoy")

    ceiling = combine(saturation["none"])
    floor = combine(saturation["floor"])
    for case, label in CASES.items():
        figure = combine(saturation[case])
        reference = {"ours": ("floor via Envoy", floor), "none": ("", ceiling)}.get(case, ("no auth", ceiling))
        bench.add(Row("2 Envoy TLS saturation", label, figure.rps, figure.p50_ms, figure.p99_ms,
                      ratio=figure.rps / reference[1].rps if reference[0] else None, reference=reference[0],
                      note=f"h2load -c {SATURATION_CLIENTS} -m {SATURATION_STREAMS}, {bench.duration:g} s x {bench.rounds}",
                      runs=[m.as_dict() for m in saturation[case]]))
    ours_sat, jwt_sat = combine(saturation["ours"]), combine(saturation["jwt_authn"])
    bench.add(Row("2 Envoy TLS saturation", "ours vs jwt_authn", ratio=ours_sat.rps / jwt_sat.rps, reference="jwt_authn",
                  note="req/s ratio; a Python ext_authz pays a gRPC round trip jwt_authn does not"))
    for rate in RATES:
        base = combine(fixed[rate]["none"])
        for case, label in CASES.items():
            figure = combine(fixed[rate][case])
            added = None if case == "none" else figure.p99_ms - base.p99_ms
            bench.add(Row(f"2 Envoy TLS {rate} req/s", label, figure.rps, figure.p50_ms, figure.p99_ms,
                          value=added, unit="ms added p99" if added is not None else "",
                          note=f"added p50 {figure.p50_ms - base.p50_ms:+.3f} ms" if case != "none" else "baseline",
                          runs=[m.as_dict() for m in fixed[rate][case]]))
