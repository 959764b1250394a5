"""Rate limits with the real Envoy and authz service: per client address (pre-auth) and per tenant.

Small buckets come from the derived variant. Each test sends from its own loopback address
(127.0.0.x) so that one test's exhausted per-address bucket never touches another's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from authz_service.providers.apikey import key_hash
from mcp_pa.core import contract
from mcp_pa.up.certs import DevCerts
from mcp_pa.up.envoy_config import RateLimit
from tests.envoy.conftest import TEST_ID_HEADER, EchoUpstream, new_test_id
from tests.support.processes import free_port
from tests.support.stack import Authz, Envoy, assert_security_headers, start_authz, start_envoy

PER_ADDRESS = 8
PER_TENANT = 3
KEYS = {
    "alpha": "mcp_sk_rate_limit_tenant_alpha_0123456789abcdef",
    "beta": "mcp_sk_rate_limit_tenant_beta_0123456789abcdefg",
}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    records = [
        {"id": f"{tenant}-key", "sha256": key_hash(key), "tenant": tenant, "permissions": ["read", "write"]}
        for tenant, key in KEYS.items()
    ]
    path.write_text(yaml.safe_dump({"keys": records}))
    return path


@pytest.fixture(scope="module")
def envoy(
    tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCerts, keys_file: Path, echo_upstream: EchoUpstream
) -> Iterator[Envoy]:
    https_port = free_port()
    authz: Authz = start_authz(
        tmp_path_factory.mktemp("authz"),
        free_port(),
        f"https://localhost:{https_port}",
        {"MCP_HTTP_API_KEYS_FILE": str(keys_file)},
    )
    try:
        proxy = start_envoy(
            tmp_path_factory.mktemp("envoy"),
            dev_certs,
            https_port=https_port,
            authz_port=authz.port,
            app_port=echo_upstream.port,
            # Long fill intervals: no token comes back while a test runs, however slow the machine.
            per_address_limit=RateLimit(PER_ADDRESS, 300),
            per_tenant_limit=RateLimit(PER_TENANT, 300),
        )
        yield proxy
        proxy.stop()
    finally:
        authz.stop()


def test_per_address_limit_answers_429_before_authentication(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    source = "127.0.0.2"
    for _ in range(PER_ADDRESS):
        assert envoy.request("GET", contract.PRM_MCP_PATH, source=source).status == 200
    test_id = new_test_id()
    # Public route and no credential: the limit protects the authz service and the app alike.
    reply = envoy.request("GET", contract.PRM_MCP_PATH, {TEST_ID_HEADER: test_id}, source=source)
    assert reply.status == 429
    assert reply.json()["error"] == "rate_limited"
    assert reply.headers["retry-after"]
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []
    assert envoy.request("POST", "/mcp", {"x-api-key": KEYS["alpha"]}, source=source).status == 429


def test_per_address_limit_leaves_other_addresses_alone(envoy: Envoy) -> None:
    for _ in range(PER_ADDRESS + 1):
        envoy.request("GET", contract.PRM_MCP_PATH, source="127.0.0.3")
    assert envoy.request("GET", contract.PRM_MCP_PATH, source="127.0.0.4").status == 200


def test_forged_x_forwarded_for_does_not_escape_the_per_address_limit(envoy: Envoy) -> None:
    # No trusted hops at the edge: the limiter keys on the TCP peer, never on a client's header.
    statuses = [
        envoy.request("GET", contract.PRM_MCP_PATH, {"x-forwarded-for": f"203.0.113.{i}"}, source="127.0.0.5").status
        for i in range(PER_ADDRESS + 1)
    ]
    assert statuses == [200] * PER_ADDRESS + [429]


def test_tenant_exhausting_its_bucket_gets_429_while_other_tenant_is_served(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    # Requests come from different addresses, so only the per-tenant bucket can refuse them.
    for i in range(PER_TENANT):
        reply = envoy.request("POST", "/mcp", {"x-api-key": KEYS["alpha"]}, source=f"127.0.1.{i + 1}")
        assert reply.status == 200
    test_id = new_test_id()
    refused = envoy.request("POST", "/mcp", {"x-api-key": KEYS["alpha"], TEST_ID_HEADER: test_id}, source="127.0.1.10")
    assert refused.status == 429
    assert refused.json()["error"] == "rate_limited"
    assert_security_headers(refused)
    assert echo_upstream.seen(test_id) == []

    test_id = new_test_id()
    served = envoy.request("POST", "/mcp", {"x-api-key": KEYS["beta"], TEST_ID_HEADER: test_id}, source="127.0.1.10")
    assert served.status == 200
    (seen,) = echo_upstream.seen(test_id)
    assert seen["headers"][contract.HEADER_TENANT_ID] == "beta"


def test_forged_tenant_header_cannot_spend_another_tenants_bucket(envoy: Envoy) -> None:
    # Public routes skip authz, so nothing would overwrite a client's x-mcp-tenant-id there: if
    # Envoy did not strip it, these requests would drain beta's bucket (one token is used above).
    for i in range(PER_TENANT + 2):
        reply = envoy.request("GET", contract.PRM_MCP_PATH, {contract.HEADER_TENANT_ID: "beta"}, source=f"127.0.2.{i + 1}")
        assert reply.status == 200
    assert envoy.request("POST", "/mcp", {"x-api-key": KEYS["beta"]}, source="127.0.2.50").status == 200
