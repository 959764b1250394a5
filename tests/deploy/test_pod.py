"""The Kubernetes pod, simulated: the rendered Deployment's three containers run as local processes.

Command, args, env and probes come from `kubectl kustomize deploy/k8s`; only what cannot be the
same on a shared test machine is mapped: image executables to the checkout's, mounted files
(the Envoy ConfigMap, the TLS Secret) to temporary files with the same content, the canonical
ports to free ones, and the placeholder Secrets to test values (a local PostgreSQL, an API key).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from mcp_pa.core import contract
from mcp_pa.up import certs, envoy_config
from mcp_pa.up.stack import port_open
from tests.deploy.conftest import clean_env, list_tool_names
from tests.deploy.test_manifests import render_k8s
from tests.support.processes import VENV_BIN, Service, StackError, free_port, scratch_dir, service, wait_for_port

API_KEY = contract.API_KEY_PREFIX + "pod-simulation-key-0123456789abcdefghijklmnop"
READY_TIMEOUT = 90.0


@dataclass
class PodMap:
    """How the pod's world maps onto this machine."""

    ports: dict[int, int]  # canonical port → free local port
    paths: dict[str, str]  # path inside the image → local path
    configmaps: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]

    def text(self, value: str) -> str:
        for inside, local in self.paths.items():
            value = value.replace(inside, local)
        return re.sub(r"\b(\d{4,5})\b", lambda m: str(self.ports.get(int(m.group(1)), m.group(1))), value)

    def argv(self, command: list[str]) -> list[str]:
        executables = {"mcp-pa": str(VENV_BIN / "mcp-pa"), "envoy": str(envoy_config.envoy_binary()), "python": sys.executable}
        return [executables.get(command[0], command[0]), *(self.text(a) for a in command[1:])]

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        env = clean_env()
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.configmaps[source["configMapRef"]["name"]])
            else:
                env.update(self.secrets[source["secretRef"]["name"]])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secrets[ref["name"]][ref["key"]]
        return env


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    text = render_k8s()
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


@pytest.fixture(scope="module")
def pod_dir() -> Iterator[Path]:
    with scratch_dir("mcp-pa-pod-") as root:
        yield root


@dataclass
class Pod:
    """The simulated pod's processes and how to reach it."""

    https_port: int
    http_port: int
    ca: Path
    pod_map: PodMap
    containers: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def pod(rendered: dict[tuple[str, str], dict[str, Any]], pg_dsn: str, pod_dir: Path) -> Iterator[Pod]:
    tmp = pod_dir
    by_kind = lambda kind: [d for (k, _), d in rendered.items() if k == kind]  # noqa: E731
    configmaps = {d["metadata"]["name"]: d["data"] for d in by_kind("ConfigMap")}
    secrets = {d["metadata"]["name"]: dict(d["stringData"]) for d in by_kind("Secret")}
    # The operator fills the placeholder Secrets; the TLS Secret holds a certificate for localhost.
    secrets["mcp-pa-database"]["url"] = pg_dsn  # the managed PostgreSQL
    secrets["mcp-pa-providers"]["MCP_HTTP_API_KEY"] = API_KEY
    tls = certs.ensure_dev_certs(tmp / "tls")

    deployment = rendered[("Deployment", "mcp-pa")]
    spec = deployment["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    envoy_mounts = {m["name"]: m["mountPath"] for m in containers["envoy"]["volumeMounts"]}

    # The ConfigMap volume as Envoy sees it, with the canonical ports mapped to free ones.
    envoy_configmap = configmaps[volumes["envoy-config"]["configMap"]["name"]]
    ports = {8443: free_port(), 8080: free_port(), 9001: free_port(), 8000: free_port(), 9102: free_port()}
    base = yaml.safe_load(envoy_configmap["envoy.yaml"])
    options = envoy_config.EnvoyOptions(
        https_port=ports[8443], http_port=ports[8080], authz_port=ports[9001], app_port=ports[8000],
        admin_port=free_port(), cert_dir=tls.server_cert.parent,
    )
    config_dir = tmp / "etc-envoy"
    envoy_config.write_config(config_dir / "envoy.yaml", options, base=base)
    pod_map = PodMap(
        ports=ports,
        paths={envoy_mounts["envoy-config"]: str(config_dir), envoy_mounts["tls"]: str(tls.server_cert.parent)},
        configmaps=configmaps,
        secrets=secrets,
    )

    # The migration Job first, as a rollout runs it.
    job = rendered[("Job", "mcp-pa-migrate")]["spec"]["template"]["spec"]["containers"][0]
    migrate = subprocess.run(pod_map.argv(job["command"]), env=pod_map.env(job), capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    services: list[Service] = []
    try:
        # All three start before any is waited for, as in a pod.
        for name, port in (("authz", ports[9001]), ("app", ports[8000]), ("envoy", ports[8443])):
            c = containers[name]
            argv = pod_map.argv([*c.get("command", []), *c.get("args", [])])
            services.append(service(name, argv, tmp / f"{name}.log", port_open(port), pod_map.env(c)).start())
        for running in services:
            try:
                running.wait_ready(READY_TIMEOUT)
            except StackError as exc:
                logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp.glob("*.log")))
                pytest.fail(f"{exc}\n{logs}")
        yield Pod(ports[8443], ports[8080], tls.ca_cert, pod_map, containers)
    finally:
        for running in reversed(services):
            running.stop()


def _probe_passes(pod: Pod, probe: dict[str, Any]) -> bool:
    if "exec" in probe:
        command = pod.pod_map.argv(probe["exec"]["command"])
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    if "httpGet" in probe:
        ports = {p["name"]: p["containerPort"] for c in pod.containers.values() for p in c.get("ports", [])}
        port = probe["httpGet"]["port"]
        local = pod.pod_map.ports[ports.get(port, port)]
        return httpx.get(f"http://127.0.0.1:{local}{probe['httpGet']['path']}", timeout=10).status_code == 200
    ports = {p["name"]: p["containerPort"] for c in pod.containers.values() for p in c.get("ports", [])}
    port = probe["tcpSocket"]["port"]
    wait_for_port(pod.pod_map.ports[ports.get(port, port)], timeout=5)
    return True


def test_every_probe_of_the_pod_passes_once_it_runs(pod: Pod) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    pending = [(c["name"], kind, c[kind]) for c in pod.containers.values() for kind in ("readinessProbe", "livenessProbe")]
    while pending and time.monotonic() < deadline:
        pending = [(name, kind, probe) for name, kind, probe in pending if not _probe_passes(pod, probe)]
        time.sleep(0.2)
    assert not pending, f"probes still failing: {[(n, k) for n, k, _ in pending]}"


async def test_tools_list_through_the_simulated_pod(pod: Pod) -> None:
    names = await list_tool_names(f"https://localhost:{pod.https_port}{contract.MCP_PATH}", API_KEY, pod.ca)
    assert names == set(contract.TOOL_PERMISSIONS)


def test_pod_answers_401_without_a_credential(pod: Pod) -> None:
    import ssl

    response = httpx.post(
        f"https://localhost:{pod.https_port}{contract.MCP_PATH}", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        verify=ssl.create_default_context(cafile=str(pod.ca)), timeout=30,
    )
    assert response.status_code == 401
