"""The Python gRPC floor: a bare grpc.aio Check server that answers every request with a constant OK.

No credential is read, no cache is consulted: what is left is the cost of grpc.aio itself
(HTTP/2, deserializing the CheckRequest, serializing the response). Our ext_authz service
cannot be faster than this in Python, so its cached-token path is reported as a ratio to it.
`--uvloop` runs the same server on uvloop (as `mcp-pa authz` does when uvloop is installed),
so the report can show what the event loop alone is worth.

    python -m bench.floor_server --listen 127.0.0.1:9101 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from google.rpc import code_pb2, status_pb2

from authz_service.proto import external_auth_pb2, external_auth_pb2_grpc
from authz_service.server import loop_factory

OK = external_auth_pb2.CheckResponse(status=status_pb2.Status(code=code_pb2.OK))


class FloorAuthorization(external_auth_pb2_grpc.AuthorizationServicer):
    """Check always allows, with the same message object every time."""

    async def Check(self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext) -> external_auth_pb2.CheckResponse:  # noqa: N802 (gRPC name)
        return OK


async def serve(listen: str) -> None:
    server = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(FloorAuthorization(), server)
    if server.add_insecure_port(listen) == 0:
        raise SystemExit(f"cannot listen on {listen}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9101", help="HOST:PORT")
    parser.add_argument("--uvloop", action="store_true", help="use uvloop instead of the standard event loop")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory() if args.uvloop else None) as runner:
        runner.run(serve(args.listen))


if __name__ == "__main__":
    main()
