"""Load generators: h2load runs (parsed into a Measurement) and the gRPC framing of request bodies.

h2load prints throughput but no percentiles, so every run writes `--log-file` (one line per
request: start µs, status, duration µs) and p50/p99 come from that file.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

INSTALL_HINT = "h2load and wrk are needed: sudo apt-get install nghttp2-client wrk"
GRPC_CONTENT_HEADERS = ("content-type: application/grpc", "te: trailers")


class BenchError(RuntimeError):
    """A bench step could not run or produced a result that is not a measurement (wrong status…)."""


def require_tools(tools: Sequence[str] = ("h2load",)) -> None:
    """Fail with the install command when a load tool is missing."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing {', '.join(missing)}. {INSTALL_HINT}")


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: 1 byte compressed flag (0), 4 bytes big-endian length."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


@dataclass(frozen=True)
class Measurement:
    """One fixed-duration run: throughput, latency percentiles and the request counts behind them."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int
    non_2xx: int
    cpu_us: float | None = None  # server CPU time per request, when the run measured it

    def as_dict(self) -> dict[str, float | int | None]:
        return {"rps": round(self.rps, 1), "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "requests": self.requests, "failed": self.failed, "non_2xx": self.non_2xx,
                "cpu_us": None if self.cpu_us is None else round(self.cpu_us, 1)}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latencies_ms(values_us: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values_us)
    return percentile(ordered, 50) / 1000, percentile(ordered, 99) / 1000


_FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout")
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def parse_h2load(output: str, log_file: Path) -> Measurement:
    """The Measurement of one h2load run from its stdout and its per-request log file."""
    finished, requests, status = _FINISHED.search(output), _REQUESTS.search(output), _STATUS.search(output)
    if not (finished and requests and status):
        raise BenchError(f"h2load output not understood:\n{output[-2000:]}")
    durations: list[float] = []
    for line in log_file.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            durations.append(float(fields[2]))
    p50, p99 = latencies_ms(durations)
    failed = int(requests.group(4)) + int(requests.group(5)) + int(requests.group(6))
    non_2xx = sum(int(status.group(i)) for i in (2, 3, 4))
    return Measurement(float(finished.group(1)), p50, p99, int(requests.group(1)), failed, non_2xx)


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True)
class H2Load:
    """One h2load invocation: target URL, headers, optional POST body, concurrency and duration."""

    url: str
    headers: Sequence[str] = ()
    body: Path | None = None
    clients: int = 4
    streams: int = 16
    duration: float = 5.0
    warm_up: float = 1.0
    rps_per_client: float | None = None  # fixed-rate mode (h2load --rps)
    h1: bool = False  # HTTP/1.1 (uvicorn speaks no h2c); keep streams at 1, h2load would pipeline

    def command(self, log_file: Path) -> list[str]:
        cmd = ["h2load", "-c", str(self.clients), "-m", str(self.streams), "-t", "1",
               "-D", _ms(self.duration), "--log-file", str(log_file)]
        if self.warm_up:
            cmd += ["--warm-up-time", _ms(self.warm_up)]
        if self.h1:
            cmd += ["--h1"]
        if self.rps_per_client is not None:
            cmd += ["--rps", f"{self.rps_per_client:g}"]
        if self.body is not None:
            cmd += ["-d", str(self.body)]
        for header in self.headers:
            cmd += ["-H", header]
        return [*cmd, self.url]

    def run(self, log_file: Path) -> Measurement:
        """Run, parse, and refuse a run where anything failed: a benchmark of errors is no benchmark."""
        log_file.unlink(missing_ok=True)
        done = subprocess.run(self.command(log_file), capture_output=True, text=True,
                              timeout=self.duration + self.warm_up + 60)
        if done.returncode != 0:
            raise BenchError(f"h2load exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")
        measurement = parse_h2load(done.stdout, log_file)
        if measurement.requests == 0 or measurement.failed or measurement.non_2xx:
            raise BenchError(f"h2load against {self.url}: {measurement} (requests failed or were refused; per-request log kept: {log_file})")
        return measurement


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
