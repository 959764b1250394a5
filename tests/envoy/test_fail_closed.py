"""Fail closed: with the authz service slow or gone, protected routes answer 503, never 200.

The authz side here is a tiny real gRPC server that takes longer than Envoy's ext_authz timeout,
then is stopped outright. Public routes keep working: they never depend on the authz service.
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Iterator

import grpc
import pytest

from mcp_pa.core import contract
from mcp_pa.up.certs import DevCerts
from tests.envoy.conftest import TEST_ID_HEADER, EchoUpstream, new_test_id
from tests.support.processes import free_port
from tests.support.stack import Envoy, assert_security_headers, start_envoy

AUTHZ_TIMEOUT = 0.5  # seconds, Envoy's ext_authz timeout in this variant
# A serialized CheckResponse{status: {code: PERMISSION_DENIED}}: even an in-time answer is a deny.
DENY_RESPONSE = b"\x0a\x02\x08\x07"


class SlowAuthz:
    """A gRPC Authorization/Check server that answers only after `delay` seconds."""

    def __init__(self, port: int, delay: float) -> None:
        self.port = port
        self.calls = 0
        self._release = threading.Event()
        self._delay = delay
        handler = grpc.method_handlers_generic_handler(
            "envoy.service.auth.v3.Authorization",
            {"Check": grpc.unary_unary_rpc_method_handler(self._check)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def _check(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        self._release.wait(self._delay)
        return DENY_RESPONSE

    def stop(self) -> None:
        self._release.set()
        self.server.stop(grace=None).wait()


@pytest.fixture(scope="module")
def slow_authz() -> Iterator[SlowAuthz]:
    server = SlowAuthz(free_port(), delay=AUTHZ_TIMEOUT * 20)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def envoy(
    tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCerts, slow_authz: SlowAuthz, echo_upstream: EchoUpstream
) -> Iterator[Envoy]:
    proxy = start_envoy(
        tmp_path_factory.mktemp("envoy"),
        dev_certs,
        authz_port=slow_authz.port,
        app_port=echo_upstream.port,
        authz_timeout=AUTHZ_TIMEOUT,
    )
    yield proxy
    proxy.stop()


def _assert_503_without_reaching_app(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    reply = envoy.request("POST", "/mcp", {TEST_ID_HEADER: test_id, "x-api-key": "mcp_sk_any_key_at_all_0123456789"})
    assert reply.status == 503
    assert reply.json() == {
        "error": "temporarily_unavailable",
        "error_description": "the authorization service is unavailable; retry later",
    }
    assert reply.headers["retry-after"]
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


def test_authz_slower_than_the_timeout_gives_503(envoy: Envoy, slow_authz: SlowAuthz, echo_upstream: EchoUpstream) -> None:
    calls_before = slow_authz.calls
    _assert_503_without_reaching_app(envoy, echo_upstream)
    assert slow_authz.calls > calls_before, "Envoy never asked the authz service"


def test_public_routes_do_not_depend_on_authz(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    reply = envoy.request("GET", contract.PRM_MCP_PATH, {TEST_ID_HEADER: test_id})
    assert reply.status == 200
    assert len(echo_upstream.seen(test_id)) == 1
    assert envoy.request("GET", "/healthz").status == 200


def test_authz_stopped_gives_503(envoy: Envoy, slow_authz: SlowAuthz, echo_upstream: EchoUpstream) -> None:
    slow_authz.stop()
    for _ in range(3):  # first request may still find a pooled connection; all must fail closed
        _assert_503_without_reaching_app(envoy, echo_upstream)


def test_app_unreachable_gives_json_503(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    echo_upstream.close()  # last test of the module: the app goes away
    reply = envoy.request("GET", contract.PRM_MCP_PATH)
    assert reply.status == 503
    assert reply.json()["error"] == "temporarily_unavailable"
    assert_security_headers(reply)
