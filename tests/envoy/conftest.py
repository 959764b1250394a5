"""Fixtures for the front-door tests: a real Envoy, the real authz service, a loopback echo upstream.

Each test module starts its own Envoy on free ports with a variant derived from the canonical
envoy/envoy.yaml by mcp_pa.up.envoy_config. The upstream is a small HTTP server that answers with
what it received, so tests can see exactly which headers and path reached the app.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from mcp_pa.up import envoy_config
from mcp_pa.up.certs import DevCerts, ensure_dev_certs
from tests.helpers import free_port, mcp_pa_command, start_listening, start_process, stop_process

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
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class Reply:
    """One HTTP response as a test sees it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Envoy:
    """A running Envoy with its derived config, ports and log."""

    options: envoy_config.EnvoyOptions
    config_path: Path
    log_path: Path
    ca_cert: Path
    proc: Any = field(repr=False, default=None)

    @property
    def https_port(self) -> int:
        assert self.options.https_port is not None
        return self.options.https_port

    @property
    def http_port(self) -> int:
        assert self.options.http_port is not None
        return self.options.http_port

    @property
    def public_url(self) -> str:
        url = self.options.effective_public_url()
        assert url is not None
        return url

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        source: str = "127.0.0.1",
        https: bool = True,
    ) -> Reply:
        """Send one request over HTTP/1.1 with the path exactly as given (no client normalisation)."""
        if https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "localhost", self.https_port, context=self.tls_context(), timeout=20, source_address=(source, 0)
            )
        else:
            conn = http.client.HTTPConnection("localhost", self.http_port, timeout=20, source_address=(source, 0))
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("content-length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def access_log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def start_envoy(directory: Path, certs: DevCerts, **overrides: Any) -> Envoy:
    """Derive a variant on free loopback ports (plus `overrides`), start Envoy, wait until ready."""
    options = envoy_config.EnvoyOptions(
        https_port=free_port(),
        http_port=free_port(),
        admin_port=free_port(),
        authz_port=free_port(),
        app_port=free_port(),
        listen_address="127.0.0.1",
        cert_dir=certs.server_cert.parent,
    )
    options = replace(options, **overrides)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = envoy_config.write_config(directory / "envoy.yaml", options)
    envoy = Envoy(options, config_path, directory / "envoy.log", certs.ca_cert)
    # Two workers are plenty here and keep the busy test machine responsive.
    envoy.proc = start_process(envoy_config.envoy_command(config_path, concurrency=2), log=envoy.log_path)
    try:
        assert options.admin_port is not None
        envoy_config.wait_until_ready(options.admin_port, timeout=60, proc=envoy.proc)
    except BaseException:
        envoy.stop()
        raise
    return envoy


@dataclass
class Authz:
    """The real authz service (`mcp-pa authz`) on a loopback port."""

    port: int
    proc: Any
    log_path: Path

    def stop(self) -> None:
        stop_process(self.proc)


def start_authz(directory: Path, port: int, public_url: str, env: Mapping[str, str]) -> Authz:
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "authz.log"
    proc = start_listening(
        mcp_pa_command("authz", "--listen", f"127.0.0.1:{port}", "--metrics-port", "0"),
        port,
        env={"MCP_HTTP_PUBLIC_URL": public_url, "MCP_HTTP_ENVIRONMENT": "development", **env},
        log=log_path,
    )
    return Authz(port, proc, log_path)


# What every reply must carry (issue 3), Envoy's own replies included.
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains; preload",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_security_headers(reply: Reply) -> None:
    headers = {k.lower(): v for k, v in reply.headers.items()}
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, f"{reply.status}: {name} is {headers.get(name)!r}"
    assert "default-src 'none'" in headers.get("content-security-policy", ""), reply.status
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "server" not in headers, f"{reply.status}: server banner {headers['server']!r}"


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
