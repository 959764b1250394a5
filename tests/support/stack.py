"""The real parts of the stack for tests: Envoy from a derived config, `mcp-pa authz` and `mcp-pa app`.

Every part runs as a Service of mcp_pa.up.stack (own process group, log file, readiness probe),
on free loopback ports, so suites run side by side and next to a local `mcp-pa up`.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from mcp_pa.up import envoy_config
from mcp_pa.up.certs import DevCerts
from mcp_pa.up.stack import Service, envoy_service, free_port, free_ports, mcp_pa_command
from tests.support.processes import listening

START_TIMEOUT = 60.0


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
    ca_cert: Path
    service: Service

    @property
    def proc(self) -> Any:
        return self.service.proc

    @property
    def log_path(self) -> Path:
        return self.service.log

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
        self.service.stop()


def start_envoy(directory: Path, certs: DevCerts, **overrides: Any) -> Envoy:
    """Derive a variant on free loopback ports (plus `overrides`), start Envoy, wait until ready."""
    https, http, admin, authz, app = free_ports(5)
    options = envoy_config.EnvoyOptions(
        https_port=https,
        http_port=http,
        admin_port=admin,
        authz_port=authz,
        app_port=app,
        listen_address="127.0.0.1",
        cert_dir=certs.server_cert.parent,
    )
    options = replace(options, **overrides)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = envoy_config.write_config(directory / "envoy.yaml", options)
    assert options.admin_port is not None
    # Two workers are plenty here and keep the busy test machine responsive.
    service = envoy_service("envoy", config_path, directory / "envoy.log", options.admin_port, concurrency=2)
    return Envoy(options, config_path, certs.ca_cert, service.run(START_TIMEOUT))


@dataclass
class Running:
    """A child service the tests started (`mcp-pa authz`, `mcp-pa app`): its port, process and log."""

    port: int
    service: Service

    @property
    def proc(self) -> Any:
        return self.service.proc

    @property
    def log_path(self) -> Path:
        return self.service.log

    def stop(self) -> None:
        self.service.stop()


Authz = App = Running


def start_authz(directory: Path, port: int, public_url: str, env: Mapping[str, str]) -> Running:
    """The real authz service (`mcp-pa authz`) on a loopback port, metrics off."""
    service = listening(
        "authz",
        mcp_pa_command("authz", "--listen", f"127.0.0.1:{port}", "--metrics-port", "0"),
        port,
        directory / "authz.log",
        env={"MCP_HTTP_PUBLIC_URL": public_url, "MCP_HTTP_ENVIRONMENT": "development", **env},
    )
    return Running(port, service)


def start_app(directory: Path, dsn: str, public_url: str, env: Mapping[str, str]) -> Running:
    """`mcp-pa app` on a free loopback port over `dsn`, with the same provider settings as the authz service."""
    port = free_port()
    service = listening(
        "app",
        mcp_pa_command("app", "--listen", f"127.0.0.1:{port}"),
        port,
        directory / "app.log",
        env={**env, "MCP_HTTP_DATABASE_CONNECTION_STRING": dsn, "MCP_HTTP_PUBLIC_URL": public_url, "MCP_HTTP_ENVIRONMENT": "development"},
    )
    return Running(port, service)


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
