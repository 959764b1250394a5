"""`python -m bench --quick` really runs: part 1 against the real authz service and floor server, report files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO


def run_bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=150, env={**os.environ, **(env or {})})


def test_quick_bench_writes_report_with_positive_rates(tmp_path: Path) -> None:
    done = run_bench("--quick", "--results-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    (out,) = tmp_path.iterdir()
    report = json.loads((out / "report.json").read_text())
    cases = {row["case"]: row for row in report["rows"]}
    assert {"floor: bare grpc.aio Check, constant OK", "ours, cached JWT, 1 worker",
            "ours, first-seen JWT (RS256 verify), 1 worker"} <= set(cases)
    for row in report["rows"]:
        assert row["rps"] > 0 and row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"], row
    assert cases["ours, cached JWT, 1 worker"]["ratio"] > 0
    assert report["machine"]["nproc"] >= 1
    markdown = (out / "report.md").read_text()
    assert "| 1 direct gRPC | ours, cached API key, 1 worker |" in markdown
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1 direct gRPC |" in done.stdout  # the table is printed too
    # Passing cases leave no per-request log, and the run says how much it wrote.
    assert not list((out / "h2load").iterdir())
    assert f"results: {out} (" in done.stdout and " MB written)" in done.stdout


def test_missing_load_tools_fail_with_the_install_command(tmp_path: Path) -> None:
    done = run_bench("--quick", "--results-dir", str(tmp_path), env={"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert "apt-get install nghttp2-client wrk" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing started, nothing written
