"""`mcp-pa health authz|app`: the readiness probes, light enough for a kubelet or compose to run often.

Loads neither the services nor the settings: the authz probe asks the gRPC health service,
the app probe GETs `/readyz` (200 only once the database answers). Both ignore proxy settings,
since a proxy from the environment must never sit between a probe and loopback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mcp_pa.core import contract

LOOPBACK = "127.0.0.1"


def grpc_serving(port: int, host: str = LOOPBACK) -> Callable[[], bool]:
    """Ready when the gRPC health service on host:port answers SERVING."""

    def probe() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            with grpc.insecure_channel(f"{host}:{port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    return probe


def http_ok(url: str) -> Callable[[], bool]:
    """Ready when GET `url` (plain HTTP on loopback) answers 200."""

    def probe() -> bool:
        import httpx

        try:
            return httpx.get(url, timeout=2.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def main(args: argparse.Namespace) -> int:
    """Exit 0 when the named service is ready, 1 (with one line on stderr) when it is not."""
    if args.service == "authz":
        port = args.port or contract.DEFAULT_AUTHZ_PORT
        ready = grpc_serving(port, args.host)()
    else:
        port = args.port or contract.DEFAULT_APP_PORT
        ready = http_ok(f"http://{args.host}:{port}{contract.READYZ_PATH}")()
    if not ready:
        import sys

        print(f"mcp-pa health: {args.service} on {args.host}:{port} is not ready", file=sys.stderr)
    return 0 if ready else 1
