"""`mcp-pa authz`: the ext_authz gRPC server (grpc.aio), health service and Prometheus metrics.

`--workers N` (N > 1) runs N copies of this process on one port with SO_REUSEPORT; the parent
only supervises and forwards SIGTERM. SIGTERM/SIGINT stop gracefully: health turns
NOT_SERVING, in-flight checks finish (5 s grace), then the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import grpc
import httpx
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from authz_service import tracing
from authz_service.pipeline import Pipeline, build_pipeline
from authz_service.proto import external_auth_pb2
from authz_service.providers.http import make_client
from mcp_pa.core import logs
from mcp_pa.core.net import parse_listen
from mcp_pa.core.settings import Settings, get_settings
from mcp_pa.core.tracing import shutdown_tracing

log = logging.getLogger("authz.server")

SERVICE_NAME = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name
GRACE_SECONDS = 5.0


class AuthorizationService:
    """envoy.service.auth.v3.Authorization: every Check goes through the pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._check = pipeline.check

    async def Check(self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext) -> bytes:  # noqa: N802 (gRPC name)
        return await self._check(request)

    def register(self, server: grpc.aio.Server) -> None:
        """Add Check to server, like the generated add_AuthorizationServicer_to_server except that
        the response serializer is the identity: the pipeline already answers with wire bytes
        (a cached identity's OK response is serialized once, not on every request)."""
        handlers = {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.Check, request_deserializer=external_auth_pb2.CheckRequest.FromString, response_serializer=None
            )
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
        server.add_registered_method_handlers(SERVICE_NAME, handlers)


@dataclass
class Running:
    """A started server: its bound port, pipeline and health servicer."""

    server: grpc.aio.Server
    port: int
    pipeline: Pipeline
    health: health.aio.HealthServicer
    client: httpx.AsyncClient

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.client.aclose()


async def start(settings: Settings, listen: str, clock: Callable[[], float] | None = None) -> Running:
    """Build the pipeline and serve it on listen (HOST:PORT; port 0 picks a free one).

    `clock` replaces the pipeline's clocks (see build_pipeline); tests pass a fake one.
    """
    client = make_client(settings.provider_timeout)
    pipeline = build_pipeline(settings, client, clock)
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", 1 << 20),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
    )
    AuthorizationService(pipeline).register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise ValueError(f"cannot listen on {listen}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return Running(server, port, pipeline, health_servicer, client)


async def _serve(settings: Settings, listen: str, metrics_port: int) -> None:
    running = await start(settings, listen)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=parse_listen(listen, "0.0.0.0")[0])
    log.info("authz listening", extra={"listen": listen, "port": running.port, "metrics_port": metrics_port or None})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("authz stopping")
    await running.stop()


def _supervise(args: argparse.Namespace, metrics_port: int) -> int:
    """Run args.workers single-worker children on one port (SO_REUSEPORT) until SIGTERM."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "mcp_pa", "authz", "--listen", args.listen, "--workers", "1",
             "--metrics-port", str(metrics_port + i if metrics_port else 0)]
        )
        for i in range(args.workers)
    ]

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    # A worker still starting up when SIGTERM arrives dies of the signal itself: that is the
    # requested stop, not a failure.
    failed = [c for c in codes if c != 0 and not (stopping and c == -signal.SIGTERM)]
    return 1 if failed else 0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (not on Windows), else the standard loop.

    grpc.aio spends most of a cached Check in event-loop bookkeeping; on uvloop a bare Check
    server used ~15% less CPU per call and answered ~25% more calls/s (docs/bench.md).
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(args: argparse.Namespace) -> int:
    """Entry point of `mcp-pa authz --listen H:P [--metrics-port N] [--workers N]`."""
    settings = get_settings()
    logs.configure(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry request URLs
    parse_listen(args.listen, "0.0.0.0")
    metrics_port = settings.authz_metrics_port if args.metrics_port is None else args.metrics_port
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.workers > 1:
        if parse_listen(args.listen, "0.0.0.0")[1] == 0:
            raise ValueError("--workers > 1 needs a fixed port in --listen")
        return _supervise(args, metrics_port)
    tracing.instrument()  # before the server exists; a no-op without OTEL_EXPORTER_OTLP_ENDPOINT
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(settings, args.listen, metrics_port))
    shutdown_tracing()
    return 0
