"""`python -m bench.tenants` really runs: schemas made by the app's path, figures that grow with them."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.processes import REPO


def test_tenants_bench_reports_each_count_with_a_growing_catalog() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.tenants", "--counts", "1,4", "--calls", "5"], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["tenants"] for r in rows] == [1, 4]
    assert rows[1]["catalog_relations"] > rows[0]["catalog_relations"] and rows[1]["database_mb"] > rows[0]["database_mb"]
    for row in rows:
        assert 0 < row["whoami_p50_ms"] <= row["whoami_p99_ms"] and row["first_request_schema_ms"] > 0 and row["db_migrate_s"] >= 0
