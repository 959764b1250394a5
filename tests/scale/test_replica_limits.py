"""The per-tenant and per-address limits hold across Envoy replicas (local_cluster_rate_limit).

Three real Envoy processes on loopback form one cluster: each reads the replica list from one
EDS file, as it would resolve the headless Service in Kubernetes. One tenant's requests, spread
over every replica, are accepted about `limit` times in all, not `limit` times per replica; when a
replica leaves, the others' shares grow so that the total stays the limit.
"""

from __future__ import annotations

import http.client
import secrets
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from authz_service.providers.apikey import key_hash
from mcp_pa.core import contract
from mcp_pa.up import envoy_config
from mcp_pa.up.certs import ensure_dev_certs
from mcp_pa.up.envoy_config import RateLimit
from tests.support.processes import free_port, free_ports, scratch_dir
from tests.support.stack import Envoy, Running, start_authz, start_envoy

REPLICAS = 3
LIMIT = 60  # per tenant, per minute: the test ends long before a refill
ADDRESS_LIMIT = 300  # per address: high enough never to be what stops the tenant's requests
TOLERANCE = 0.10
UNLIMITED = RateLimit(1_000_000, 1)
TENANTS = ("replica_a", "replica_b")


class _Ok(BaseHTTPRequestHandler):
    """The app stand-in: 200 to everything (what reaches it was accepted)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class Cluster:
    envoys: list[Envoy]
    replicas_file: Path
    ca: Path
    keys: dict[str, str]

    def membership(self, envoy: Envoy) -> int:
        url = f"http://127.0.0.1:{envoy.options.admin_port}/stats?filter=^cluster.{envoy_config.REPLICAS_CLUSTER}.membership_total$"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(reply.read().decode().rsplit(":", 1)[1])

    def wait_membership(self, envoys: list[Envoy], count: int) -> None:
        deadline = time.monotonic() + 30
        while any(self.membership(e) != count for e in envoys):
            assert time.monotonic() < deadline, f"replicas never saw a membership of {count}: {[self.membership(e) for e in envoys]}"
            time.sleep(0.05)

    def statuses(self, envoy: Envoy, attempts: int, headers: dict[str, str], source: str) -> list[int]:
        """The statuses of `attempts` requests to one replica from `source`, on one kept-alive connection."""
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("localhost", envoy.https_port, context=context, timeout=20, source_address=(source, 0))
        found = []
        try:
            for _ in range(attempts):
                conn.request("POST", contract.MCP_PATH, body=b"{}", headers={"content-type": "application/json", **headers})
                reply = conn.getresponse()
                reply.read()
                found.append(reply.status)
        finally:
            conn.close()
        return found

    def accepted(self, envoy: Envoy, attempts: int, key: str, source: str) -> int:
        """How many of a tenant's `attempts` this replica let through (200); every other answer must be 429."""
        statuses = self.statuses(envoy, attempts, {contract.HEADER_API_KEY: key}, source)
        assert set(statuses) <= {200, 429}, statuses
        return statuses.count(200)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with scratch_dir("mcp-pa-replicas-") as root:
        upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), _Ok)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        keys = {tenant: contract.API_KEY_PREFIX + secrets.token_urlsafe(32) for tenant in TENANTS}
        keys_file = root / "keys.yaml"
        keys_file.write_text(yaml.safe_dump({"keys": [
            {"id": tenant, "sha256": key_hash(key), "tenant": tenant, "permissions": ["read", "write"]} for tenant, key in keys.items()]}))
        authz: Running | None = None
        envoys: list[Envoy] = []
        try:
            authz = start_authz(root, free_port(), "https://localhost", {"MCP_HTTP_API_KEYS_FILE": str(keys_file), "MCP_HTTP_LOG_LEVEL": "WARNING"})
            certs = ensure_dev_certs(root / "tls")
            ports = [free_ports(3) for _ in range(REPLICAS)]
            replicas_file = root / "replicas.yaml"
            envoy_config.write_replicas_file(replicas_file, [("127.0.0.1", https) for https, _, _ in ports])
            for i, (https, http, admin) in enumerate(ports):
                envoys.append(start_envoy(root / f"envoy-{i}", certs, https_port=https, http_port=http, admin_port=admin,
                                          authz_port=authz.port, app_port=upstream.server_address[1], replicas_file=replicas_file,
                                          per_tenant_limit=RateLimit(LIMIT, 60), per_address_limit=RateLimit(ADDRESS_LIMIT, 60)))
            yield Cluster(envoys, replicas_file, certs.ca_cert, keys)
        finally:
            for envoy in envoys:
                envoy.stop()
            if authz is not None:
                authz.stop()
            upstream.shutdown()


def within_limit(total: int, limit: int = LIMIT) -> bool:
    return abs(total - limit) <= TOLERANCE * limit


def test_a_tenant_gets_its_limit_once_across_replicas_and_more_from_each_when_one_leaves(cluster: Cluster) -> None:
    envoys = cluster.envoys
    cluster.wait_membership(envoys, REPLICAS)
    # Each replica is offered the whole limit: alone, each would accept all of it.
    first = [cluster.accepted(e, LIMIT, cluster.keys["replica_a"], "127.0.0.1") for e in envoys]
    print(f"tenant across {REPLICAS} replicas: accepted {first} of {LIMIT} offered to each (limit {LIMIT})")
    assert within_limit(sum(first)), first
    assert all(n < LIMIT for n in first), first

    leaving = envoys[-1]
    leaving.stop()
    staying = envoys[:-1]
    envoy_config.write_replicas_file(cluster.replicas_file, [("127.0.0.1", e.https_port) for e in staying])
    cluster.wait_membership(staying, len(staying))
    # A tenant whose bucket starts now gets the new share: half the limit each, not a third.
    second = [cluster.accepted(e, LIMIT, cluster.keys["replica_b"], "127.0.0.2") for e in staying]
    print(f"tenant across {len(staying)} replicas: accepted {second} (limit {LIMIT})")
    assert within_limit(sum(second)), second
    assert min(second) > max(first), (first, second)


def test_an_address_gets_its_limit_once_across_replicas(cluster: Cluster) -> None:
    live = [e for e in cluster.envoys if not e.service.exited()]
    cluster.wait_membership(live, len(live))
    # No credential: authz refuses it (401) once the per-address limiter has let it through.
    accepted = [len([s for s in cluster.statuses(e, ADDRESS_LIMIT, {}, "127.0.0.3") if s != 429]) for e in live]
    print(f"address across {len(live)} replicas: accepted {accepted} (limit {ADDRESS_LIMIT})")
    assert within_limit(sum(accepted), ADDRESS_LIMIT), accepted


def test_kubernetes_has_the_headless_service_the_replicas_cluster_resolves() -> None:
    from tests.deploy.test_manifests import render_k8s

    documents = [d for d in yaml.safe_load_all(render_k8s()) if d]
    canonical = envoy_config.load_config()
    (replicas,) = [c for c in canonical["static_resources"]["clusters"] if c["name"] == envoy_config.REPLICAS_CLUSTER]
    assert canonical["cluster_manager"]["local_cluster_name"] == envoy_config.REPLICAS_CLUSTER and replicas["type"] == "STRICT_DNS"
    address = replicas["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    peers = services[address["address"]]
    assert peers["spec"]["clusterIP"] == "None", "the peers Service must be headless so DNS lists every pod"
    assert address["port_value"] in [p["port"] for p in peers["spec"]["ports"]]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert peers["spec"]["selector"].items() <= labels.items()
    for name in (envoy_config.PER_TENANT_FILTER, envoy_config.PER_ADDRESS_FILTER):
        assert envoy_config._http_filter(canonical, name)["local_cluster_rate_limit"] == {}, name
