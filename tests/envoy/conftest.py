"""Fixtures for the front-door tests: a real Envoy, the real authz service, a loopback echo upstream.

Each test module starts its own Envoy on free ports with a variant derived from the canonical
envoy/envoy.yaml by mcp_pa.up.envoy_config (tests.support.stack starts it, and the authz service). The upstream is a small HTTP server that answers with
what it received, so tests can see exactly which headers and path reached the app.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from mcp_pa.up.certs import DevCerts, ensure_dev_certs

# Lets a test find its own request among those the echo upstream recorded.
TEST_ID_HEADER = "x-test-id"


class _EchoHandler(BaseHTTPRequestHandler):
    server: "EchoUpstream"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""
        # Read a chunked body to its end like a real app would, so no reply leaves early.
        body = b""
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return body

    def _answer(self) -> None:
        try:
            body = self._read_body()
        except (OSError, ValueError):
            return  # Envoy reset the request mid-body: nothing to answer
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_length": len(body),
        }
        self.server.record(seen)
        payload = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def version_string(self) -> str:
        return "echo-upstream/1.0"  # sent as `server:`; Envoy must drop it

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class EchoUpstream(ThreadingHTTPServer):
    """An HTTP server on loopback that records every request and echoes it back as JSON."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def record(self, seen: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(seen)

    def seen(self, test_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["headers"].get(TEST_ID_HEADER) == test_id]

    def close(self) -> None:
        """Stop listening and drop the connections Envoy keeps pooled: the app is gone."""
        self.shutdown()
        self.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def new_test_id() -> str:
    return secrets.token_hex(8)


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    return ensure_dev_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[EchoUpstream]:
    server = EchoUpstream()
    yield server
    server.close()
