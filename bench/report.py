"""The report of one run: report.md (tables, targets, machine), report.json and chart.png."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.context import Row

TARGETS = (
    # (description, part, case, field, comparison, limit)
    ("cached-token Check ≥ 0.8× floor req/s, direct", "1 direct gRPC", "ours, cached JWT, 1 worker", "ratio", ">=", 0.8),
    ("cached-token Check ≥ 0.8× floor req/s, through Envoy", "2 Envoy TLS saturation", "Envoy + our ext_authz (cached JWT)", "ratio", ">=", 0.8),
    ("added p99 ≤ 1.5 ms at 1,000 req/s through Envoy", "2 Envoy TLS 1000 req/s", "Envoy + our ext_authz (cached JWT)", "value", "<=", 1.5),
    ("100,000 cached identities ≤ 150 MB RSS", "4 memory", "authz RSS, 100,000 cached identities", "value", "<=", 150.0),
)


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "kernel": platform.release(),
            "h2load": h2load, "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = ["| part | case | req/s | p50 ms | p99 ms | ratio | vs | value | note |", "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        value = f"{_fmt(r.value)} {r.unit}".strip() if r.value is not None else ""
        lines.append(f"| {r.part} | {r.case} | {_fmt(r.rps, 0)} | {_fmt(r.p50_ms, 3)} | {_fmt(r.p99_ms, 3)} | "
                     f"{_fmt(r.ratio)} | {r.reference} | {value} | {r.note} |")
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    found = []
    for description, part, case, field, op, limit in TARGETS:
        row = next((r for r in rows if r.part == part and r.case == case), None)
        measured = getattr(row, field) if row else None
        met = None if measured is None else (measured >= limit if op == ">=" else measured <= limit)
        found.append({"target": description, "measured": measured, "met": met})
    return found


def markdown(rows: list[Row], info: dict[str, Any], command: str) -> str:
    verdicts = targets(rows)
    target_lines = [f"- {'MET' if t['met'] else 'not met' if t['met'] is False else 'not measured'}: {t['target']} "
                    f"(measured {_fmt(t['measured'])})" for t in verdicts]
    return "\n".join([
        "# mcp-pa bench report", "",
        f"Command: `{command}`  ",
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, Linux {info['kernel']}, {info['h2load']}  ",
        f"Load average (1, 5, 15 min) at start {info['loadavg_start']}, at end {info['loadavg_end']}: other work on the "
        "machine shares the cores, so compare ratios of neighbouring runs rather than absolute figures.", "",
        table(rows), "", "## Targets", "", *target_lines, "",
    ])


def chart(rows: list[Row], path: Path) -> None:
    """Requests/s per case (parts 1-3) and added p99 at the fixed rates, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate_rows = [r for r in rows if r.rps is not None and not r.part.endswith("req/s")]
    added = [r for r in rows if r.unit == "ms added p99"]
    if not rate_rows:
        return  # parts 5 and 6 alone report latencies and values, not rates: no throughput chart
    figure, axes = plt.subplots(1, 2 if added else 1, figsize=(14 if added else 9, 0.45 * len(rate_rows) + 2), squeeze=False)
    left = axes[0][0]
    left.barh([f"[{r.part.split()[0]}] {r.case}" for r in rate_rows], [r.rps for r in rate_rows], color="#4477aa")
    left.invert_yaxis()
    left.set_xscale("log")  # Envoy alone is ~100x the MCP path: a linear axis hides one or the other
    left.set_xlabel("requests/s (log scale)")
    left.set_title("Throughput")
    if added:
        right = axes[0][1]
        right.barh([f"{r.part.split()[-2]} req/s: {r.case}" for r in added], [r.value for r in added], color="#cc6677")
        right.axvline(1.5, color="black", linestyle="--", linewidth=1, label="target 1.5 ms")
        right.invert_yaxis()
        right.set_xlabel("added p99 vs no-auth Envoy (ms)")
        right.set_title("Added p99 at fixed rate")
        right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(rows: list[Row], out: Path, command: str, loadavg_start: tuple[float, float, float]) -> str:
    """Write the three files; returns the Markdown (printed by the caller)."""
    info = {**machine(), "loadavg_start": [round(x, 2) for x in loadavg_start]}
    text = markdown(rows, info, command)
    (out / "report.md").write_text(text)
    (out / "report.json").write_text(json.dumps(
        {"command": command, "machine": info, "rows": [asdict(r) for r in rows], "targets": targets(rows)}, indent=2) + "\n")
    chart(rows, out / "chart.png")
    return text
