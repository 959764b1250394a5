"""Deployment artefacts are valid and agree with the one envoy/envoy.yaml: Kubernetes, compose, Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_pa.core.settings import ENV_PREFIX, Settings
from tests.support.processes import REPO, VENV_BIN

K8S = REPO / "deploy" / "k8s"
ENVOY_YAML = REPO / "envoy" / "envoy.yaml"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def render_k8s() -> str:
    """`kubectl kustomize deploy/k8s` (kubectl embeds kustomize; Debian/Ubuntu package `kubectl`)."""
    if not Path(KUBECTL).exists():
        pytest.fail("kubectl not found: install it (apt-get install kubectl) to render deploy/k8s")
    return subprocess.run([KUBECTL, "kustomize", str(K8S)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("k8s") / "rendered.yaml"
    out.write_text(render_k8s())
    return out


@pytest.fixture(scope="module")
def docs(rendered: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered.read_text()) if d]


def _one(docs: list[dict[str, Any]], kind: str, name_prefix: str = "mcp-pa") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"expected one {kind} named {name_prefix}*, found {len(found)}"
    return found[0]


def _envoy() -> dict[str, Any]:
    return yaml.safe_load(ENVOY_YAML.read_text())


def _listener_ports() -> set[int]:
    return {listener["address"]["socket_address"]["port_value"] for listener in _envoy()["static_resources"]["listeners"]}


def _cluster_ports() -> dict[str, int]:
    return {
        c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"]
        for c in _envoy()["static_resources"]["clusters"]
    }


def _tls_dir() -> str:
    found = re.findall(r"filename: (\S+)/tls\.crt", ENVOY_YAML.read_text())
    assert found, "envoy.yaml names no tls.crt"
    return found[0]


# --- Kubernetes ---------------------------------------------------------------------------------


def test_rendered_manifests_pass_kubernetes_validate_strictly(rendered: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", "1.31.0", str(rendered)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed" not in result.stdout.lower()


def test_every_expected_kind_is_rendered(docs: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
            "Job", "ConfigMap", "Secret"} <= kinds


def test_envoy_configmap_holds_the_canonical_envoy_yaml_byte_for_byte(docs: list[dict[str, Any]]) -> None:
    configmap = _one(docs, "ConfigMap", "mcp-pa-envoy")
    assert configmap["data"]["envoy.yaml"] == ENVOY_YAML.read_text(), (
        "deploy/k8s/envoy.yaml differs from envoy/envoy.yaml: cp envoy/envoy.yaml deploy/k8s/envoy.yaml"
    )


def test_every_container_is_non_root_read_only_and_drops_all_capabilities(docs: list[dict[str, Any]]) -> None:
    pods = [_one(docs, "Deployment")["spec"]["template"]["spec"], _one(docs, "Job")["spec"]["template"]["spec"]]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]


def test_pod_holds_envoy_authz_and_app_with_probes(docs: list[dict[str, Any]]) -> None:
    containers = {c["name"]: c for c in _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"envoy", "authz", "app"}
    for c in containers.values():
        assert "readinessProbe" in c and "livenessProbe" in c, c["name"]


def test_sidecars_listen_where_envoy_yaml_sends_requests(docs: list[dict[str, Any]]) -> None:
    containers = {c["name"]: c for c in _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]}
    clusters = _cluster_ports()
    assert f"127.0.0.1:{clusters['authz']}" in containers["authz"]["command"]
    assert f"127.0.0.1:{clusters['app']}" in containers["app"]["command"]
    # Each process runs as many workers as its CPU limit allows (docs/scaling.md).
    for name in ("authz", "app"):
        command = containers[name]["command"]
        limit = containers[name]["resources"]["limits"]["cpu"]
        assert command[command.index("--workers") + 1] == str(int(limit)), (name, command, limit)
    assert {p["containerPort"] for p in containers["envoy"]["ports"]} == _listener_ports()
    mounts = {m["mountPath"] for m in containers["envoy"]["volumeMounts"]}
    assert _tls_dir() in mounts and "/etc/envoy" in mounts


def test_network_policy_lets_in_only_envoys_ports(docs: list[dict[str, Any]]) -> None:
    policy = _one(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {8443, 8080} == _listener_ports()


def test_migration_job_runs_db_migrate(docs: list[dict[str, Any]]) -> None:
    job = _one(docs, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["mcp-pa", "db", "migrate"]


# --- compose ------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(REPO / "compose.yaml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_publishes_only_8443_and_8080_and_shares_envoys_network() -> None:
    services = _compose()["services"]
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert sorted(published) == ["8080:8080", "8443:8443"]
    assert services["authz"]["network_mode"] == "service:envoy"
    assert services["app"]["network_mode"] == "service:envoy"


def test_compose_mounts_envoy_yaml_unchanged_with_a_pinned_1_40_image() -> None:
    envoy = _compose()["services"]["envoy"]
    assert re.fullmatch(r"envoyproxy/envoy:v1\.40\.\d+", envoy["image"])
    assert "./envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro" in envoy["volumes"]
    assert any(v.startswith("tls:") and v.split(":")[1] == _tls_dir() for v in envoy["volumes"])


def test_compose_postgres_is_pgvector_with_volume_and_healthcheck() -> None:
    pg = _compose()["services"]["postgres"]
    assert pg["image"].startswith("pgvector/pgvector:")
    assert pg["healthcheck"]["test"] and any(v.startswith("pgdata:") for v in pg["volumes"])


def test_env_example_names_only_real_settings() -> None:
    names = re.findall(rf"^#?\s*{ENV_PREFIX}([A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M)
    assert names
    unknown = {n for n in names if n.lower() not in Settings.model_fields}
    assert not unknown, f".env.example names settings that do not exist: {sorted(unknown)}"


# --- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_is_clean_under_hadolint() -> None:
    result = subprocess.run([str(VENV_BIN / "hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_healthchecks_and_both_targets() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)", text, re.M)
    assert stages == ["build", "build-local", "runtime", "all-in-one", "service"]
    assert re.search(r"^USER 10001", text, re.M)
    assert text.count("HEALTHCHECK ") == 2
    assert 'ENTRYPOINT ["mcp-pa", "up"]' in text
    assert 'CMD ["mcp-pa", "health", "app", "--port", "8000"]' in text


def test_dockerfile_installs_the_wheel_with_the_extras_of_each_target() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "pip wheel" in text and " -e " not in text, "the image installs the built wheel, not an editable checkout"
    assert "[server]" in text and "[server,local]" in text
    # The service image has no embedded Envoy or PostgreSQL; only the all-in-one copies that venv.
    assert re.search(r"FROM runtime AS service\n(?:#.*\n)*COPY --from=build /opt/venv /opt/venv", text)
    assert re.search(r"FROM runtime AS all-in-one\n(?:#.*\n)*COPY --from=build-local /opt/venv /opt/venv", text)


# --- Makefile -----------------------------------------------------------------------------------


def _make_dry_run(*args: str) -> list[str]:
    """What `make -n` would run, forced (-B) so the install steps show even with fresh stamps."""
    result = subprocess.run(["make", "-n", "-B", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if not line.startswith("make")]


def test_make_run_installs_only_server_and_local_and_passes_args() -> None:
    lines = _make_dry_run("run", "ARGS=--https-port 9443 --state-dir /tmp/x")
    installs = [line for line in lines if "scripts/install.sh" in line]
    assert installs and all(line.endswith(" server,local") for line in installs), lines
    assert lines[-1] == ".venv/bin/mcp-pa up --https-port 9443 --state-dir /tmp/x"


def test_make_test_installs_the_test_extra_and_runs_the_gates_before_pytest() -> None:
    lines = _make_dry_run("test")
    assert any(line.endswith("scripts/install.sh .venv server,local,test,bench") for line in lines), lines
    gates = [next(i for i, line in enumerate(lines) if tool in line) for tool in ("ruff check", "mypy", "lint-imports", "pytest")]
    assert gates == sorted(gates), lines


# --- README -------------------------------------------------------------------------------------


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    rows = set(re.findall(rf"^\| `{ENV_PREFIX}([A-Z0-9_]+)` \|", readme, re.M))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - rows == set(), f"settings missing from the README table: {sorted(expected - rows)}"
    assert rows - expected == set(), f"README lists settings that do not exist: {sorted(rows - expected)}"


def test_readme_names_every_up_flag() -> None:
    from mcp_pa.cli import build_parser

    readme = (REPO / "README.md").read_text()
    up = build_parser()._subparsers._group_actions[0].choices["up"]  # type: ignore[union-attr]
    flags = {s for a in up._actions for s in a.option_strings if s.startswith("--") and s != "--help"}
    assert {f for f in flags if f not in readme} == set()


def test_dockerfile_copies_every_package_and_the_canonical_envoy_yaml() -> None:
    import tomllib

    text = (REPO / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \./", text, re.M))
    packages = {p.rstrip("*") for p in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]}
    # The wheel's mcp_pa/up/envoy.yaml links to envoy/envoy.yaml: the build stage needs both.
    assert packages | {"envoy"} <= copied
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert not (copied & ignored), "the .dockerignore drops something the Dockerfile copies"


def test_readme_ext_authz_snippet_for_your_own_envoy_is_a_valid_envoy_config(tmp_path: Path) -> None:
    from mcp_pa.up import envoy_config

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### The authz service alone, behind your own Envoy"):readme.index("### The authz service behind Istio")]
    snippet = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "readme",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
        "http_filters": snippet["http_filters"],
    }
    listener = {
        "name": "readme",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}],
    }
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump({"static_resources": {"listeners": [listener], "clusters": snippet["clusters"]}}))
    envoy_config.validate(path)  # raises with Envoy's own message when the snippet is wrong
