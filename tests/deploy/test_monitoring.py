"""deploy/monitoring: the Grafana dashboard and the Prometheus alert rules use only metrics that exist.

Our metric names come from the prometheus_client registry the services fill at import; Envoy's
from the /stats/prometheus of a real Envoy running the canonical config.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from typing import Iterator

import pytest
import yaml
from prometheus_client import REGISTRY

import authz_service.metrics  # noqa: F401  (registers the authz metrics)
import mcp_app.db  # noqa: F401  (the database readiness gauge)
import mcp_app.tools.base  # noqa: F401  (the tool call metrics)
from mcp_pa.up.certs import ensure_dev_certs
from tests.support.processes import REPO, scratch_dir
from tests.support.stack import start_envoy

MONITORING = REPO / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yaml"
OUR_PREFIXES = ("mcp_pa_", "mcp_app_")
# A metric selector in PromQL: the name, then its label matchers if any.
SELECTOR = re.compile(r"\b((?:envoy|mcp_pa|mcp_app)_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",), "summary": ("_count", "_sum", "")}


def our_metrics() -> dict[str, set[str]]:
    """Every sample name the authz service and the app export, with its label names."""
    found: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # type: ignore[attr-defined]
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            if family.name.startswith(OUR_PREFIXES):
                for suffix in SUFFIXES.get(family.type, ("",)):
                    found[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


def parse_exposition(text: str) -> dict[str, set[str]]:
    """Sample names and their label names from Prometheus text exposition."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, rest = line.partition("{")
        name = name.split()[0]
        labels = set(MATCHER.findall("{" + rest)) if rest else set()
        found.setdefault(name, set()).update(label for label, _op in labels)
    return found


@pytest.fixture(scope="module")
def envoy_metrics() -> Iterator[dict[str, set[str]]]:
    with scratch_dir("mcp-pa-monitoring-") as root:
        envoy = start_envoy(root / "envoy", ensure_dev_certs(root / "tls"))
        try:
            assert envoy.options.admin_port is not None
            with urllib.request.urlopen(f"http://127.0.0.1:{envoy.options.admin_port}/stats/prometheus", timeout=10) as reply:
                yield parse_exposition(reply.read().decode())
        finally:
            envoy.stop()


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_dashboard_is_a_grafana_dashboard_over_a_prometheus_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]


def test_alert_rules_name_a_severity_and_a_summary() -> None:
    rules = alert_rules()
    assert rules
    for rule in rules:
        assert re.fullmatch(r"McpPa[A-Za-z]+", str(rule["alert"])), rule
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule  # type: ignore[index]
        assert rule["annotations"]["summary"] and re.fullmatch(r"\d+m", str(rule["for"])), rule  # type: ignore[index]


def test_alerts_cover_checks_tools_429_503_and_database_readiness() -> None:
    exprs = " ".join(str(rule["expr"]) for rule in alert_rules())
    for metric in ("mcp_pa_authz_checks_total", "mcp_pa_authz_check_duration_seconds_bucket", "mcp_app_tool_calls_total",
                   "envoy_http_local_rate_limit_rate_limited", "envoy_http_ext_authz_error", "mcp_app_database_ready"):
        assert metric in exprs, metric


def test_every_metric_and_label_used_exists(envoy_metrics: dict[str, set[str]]) -> None:
    known = {**envoy_metrics, **our_metrics()}
    used = [*dashboard_exprs(), *(str(rule["expr"]) for rule in alert_rules())]
    problems = []
    for expr in used:
        grouped = {label.strip() for labels in GROUPING.findall(expr) for label in labels.split(",") if label.strip()}
        labels_here: set[str] = set()
        for name, matchers in SELECTOR.findall(GROUPING.sub("", expr)):
            if name not in known:
                problems.append(f"{name} (in {expr!r}) is exported by neither the services nor Envoy")
                continue
            labels_here |= known[name]
            for label, _op in MATCHER.findall(matchers):
                if label not in known[name]:
                    problems.append(f"{name} has no label {label!r} (it has {sorted(known[name])})")
        if grouped - labels_here:
            problems.append(f"{expr!r} groups by {sorted(grouped - labels_here)}, a label none of its metrics has")
    assert not problems, "\n".join(problems)


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/system-tools.sh installs it (Debian package prometheus)"
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"SUCCESS: {len(alert_rules())} rules found" in done.stdout, done.stdout + done.stderr
