"""What every bench part shares: the output folder, run lengths, fake issuers, credentials and results."""

from __future__ import annotations

import re
import statistics
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.load import BenchError, H2Load, Measurement
from bench.traffic import Ed25519Signer, oidc_env, oidc_setting
from fakes.providers import FakeIssuer, FakeProviders
from mcp_pa.up.certs import DevCerts

PUBLIC_URL = "https://localhost:8443"
AUDIENCE = f"{PUBLIC_URL}/mcp"


@dataclass
class Row:
    """One line of the report: a case and its figures; `ratio` is rps (or latency) relative to `reference`."""

    part: str
    case: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio: float | None = None
    reference: str = ""
    value: float | None = None  # a figure that is not a rate (memory, added latency)
    unit: str = ""
    note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)


def paired_ratio(runs: Sequence[Measurement], reference: Sequence[Measurement]) -> float:
    """Median over rounds of rps / reference rps, each pair measured back to back.

    On a shared machine the load of other processes drifts by 2x within a minute; a ratio of
    two neighbouring runs cancels most of that, an overall average would not.
    """
    return statistics.median(a.rps / b.rps for a, b in zip(runs, reference, strict=True))


def combine(runs: Sequence[Measurement]) -> Measurement:
    """Median of interleaved rounds (so one disturbed round does not decide the figure)."""
    cpu = [m.cpu_us for m in runs if m.cpu_us is not None]
    return Measurement(
        statistics.median(m.rps for m in runs), statistics.median(m.p50_ms for m in runs),
        statistics.median(m.p99_ms for m in runs), sum(m.requests for m in runs), 0, 0,
        statistics.median(cpu) if cpu else None,
    )


@dataclass
class Bench:
    """The run: where results go, how long each measurement lasts, and the credentials in play."""

    out: Path
    quick: bool
    providers: FakeProviders
    rs_issuer: FakeIssuer  # RS256: the repeated token, the first-seen pool, jwt_authn
    ed_signer: Ed25519Signer  # EdDSA: cheap to mint and verify, fills the cache in the memory part
    certs: DevCerts
    api_key: str
    token: str
    rows: list[Row] = field(default_factory=list)
    _logs: int = 0

    # Short runs, more rounds: with A/B interleaved, three 3 s rounds resist drift better than two 5 s ones.
    @property
    def duration(self) -> float:
        return 1.0 if self.quick else 3.0

    @property
    def warm_up(self) -> float:
        return 0.5

    @property
    def rounds(self) -> int:
        return 1 if self.quick else 3

    def authz_env(self) -> dict[str, str]:
        return {
            "MCP_HTTP_PUBLIC_URL": PUBLIC_URL,
            "MCP_HTTP_API_KEY": self.api_key,
            "MCP_HTTP_LOG_LEVEL": "WARNING",
            **oidc_env([oidc_setting("bench", self.rs_issuer, AUDIENCE), oidc_setting("bench-ed", self.ed_signer.issuer, AUDIENCE)]),
        }

    def h2load(self, load: H2Load) -> Measurement:
        """Run one case; its per-request log (MBs each) is kept only when the case failed."""
        self._logs += 1
        log_file = self.out / "h2load" / f"{self._logs:03d}.tsv"
        measurement = load.run(log_file)
        log_file.unlink(missing_ok=True)
        return measurement

    def interleave(self, cases: dict[str, Callable[[], Measurement]], rounds: int | None = None) -> dict[str, list[Measurement]]:
        """Run every case once per round, in turn (A B C A B C), so drift hits them all alike."""
        results: dict[str, list[Measurement]] = {name: [] for name in cases}
        for _ in range(rounds or self.rounds):
            for name, run in cases.items():
                results[name].append(run())
        return results

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def add_measured(self, part: str, case: str, runs: Sequence[Measurement], note: str,
                     reference: Sequence[Measurement] = (), reference_name: str = "") -> Row:
        """A row of combined rounds, with the paired rps ratio to `reference` when one is given."""
        figure = combine(runs)
        return self.add(Row(part, case, figure.rps, figure.p50_ms, figure.p99_ms,
                            ratio=paired_ratio(runs, reference) if reference else None, reference=reference_name,
                            value=figure.cpu_us, unit="µs CPU/call" if figure.cpu_us is not None else "",
                            note=note, runs=[m.as_dict() for m in runs]))


_METRIC = re.compile(r'^mcp_pa_authz_checks_total\{([^}]*)\} ([0-9.e+]+)$', re.M)


def refusals(metrics_ports: Sequence[int]) -> int:
    """Checks the authz workers refused so far (every result but allow), from their metrics."""
    total = 0
    for port in metrics_ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        total += sum(int(float(v)) for labels, v in _METRIC.findall(text) if 'result="allow"' not in labels)
    return total


def assert_no_refusals(metrics_ports: Sequence[int], before: int, what: str) -> None:
    now = refusals(metrics_ports)
    if now != before:
        raise BenchError(f"{what}: the authz service refused {now - before} checks during the run")
