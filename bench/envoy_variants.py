"""Envoy configurations for the bench, derived in code from the canonical envoy/envoy.yaml.

`mcp_pa.up.envoy_config.render` sets ports and certificates; on top of that a variant
- lifts the rate limits out of reach (the filters stay, so their cost is still measured),
- optionally answers `/mcp` with a direct response (no app: the front door alone),
- and chooses the authentication: ext_authz (our service or the floor, by the authz port),
  none (the ceiling), or Envoy's in-process `jwt_authn` on the same token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcp_pa.core import contract
from mcp_pa.up import envoy_config

Auth = Literal["ext_authz", "none", "jwt_authn"]
# Far beyond anything two cores can send: the buckets never run dry during a run.
UNLIMITED = envoy_config.RateLimit(requests=1_000_000_000, seconds=1)
DIRECT_BODY = '{"ok":true}'
JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn"
JWT_PROVIDER = "bench"


@dataclass(frozen=True)
class JwtAuthn:
    """What Envoy's jwt_authn needs to accept the bench tokens: issuer, audience and the key set."""

    issuer: str
    audience: str
    jwks: dict[str, Any]


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one Envoy and its upstreams."""

    https: int
    http: int
    admin: int
    authz: int
    app: int


def _https_manager(config: dict[str, Any]) -> dict[str, Any]:
    # The derivation's own lookups, so the bench follows the canonical file's structure.
    return envoy_config._connection_manager(envoy_config._listener(config, envoy_config.HTTPS_LISTENER))


def _jwt_authn_filter(jwt: JwtAuthn) -> dict[str, Any]:
    return {
        "name": JWT_AUTHN_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                JWT_PROVIDER: {
                    "issuer": jwt.issuer,
                    "audiences": [jwt.audience],
                    "local_jwks": {"inline_string": json.dumps(jwt.jwks)},
                    "forward": False,
                    # Verified tokens are cached, as our service caches identities: like for like.
                    "jwt_cache_config": {"jwt_cache_size": 1000},
                }
            },
            "rules": [{"match": {"prefix": contract.MCP_PATH}, "requires": {"provider_name": JWT_PROVIDER}}],
        },
    }


def render(ports: Ports, cert_dir: Path, auth: Auth = "ext_authz", direct_response: bool = True,
           jwt: JwtAuthn | None = None, authz_streams_per_connection: int | None = None) -> dict[str, Any]:
    """One bench variant of the canonical configuration.

    `authz_streams_per_connection` caps concurrent Checks per HTTP/2 connection to the authz
    cluster: Envoy then opens more connections, which SO_REUSEPORT spreads over `--workers N`
    (one connection, the default, lands on one worker and leaves the others idle).
    """
    options = envoy_config.EnvoyOptions(
        https_port=ports.https, http_port=ports.http, admin_port=ports.admin, authz_port=ports.authz,
        app_port=ports.app, listen_address="127.0.0.1", cert_dir=cert_dir,
        per_address_limit=UNLIMITED, per_tenant_limit=UNLIMITED,
    )
    config = envoy_config.render(options)
    manager = _https_manager(config)
    filters = manager["http_filters"]
    position = next(i for i, f in enumerate(filters) if f["name"] == envoy_config.EXT_AUTHZ_FILTER)
    if auth == "none":
        del filters[position]
    elif auth == "jwt_authn":
        if jwt is None:
            raise ValueError("the jwt_authn variant needs the issuer, audience and JWKS")
        filters[position] = _jwt_authn_filter(jwt)
    if authz_streams_per_connection is not None:
        cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == envoy_config.AUTHZ_CLUSTER)
        options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        options["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"] = authz_streams_per_connection
    _discard_access_logs(config)
    if direct_response:
        for route in manager["route_config"]["virtual_hosts"][0]["routes"]:
            if route.get("name") == "mcp":
                del route["route"]
                route["direct_response"] = {"status": 200, "body": {"inline_string": DIRECT_BODY}}
    return config


def _discard_access_logs(node: Any) -> None:
    """Every stdout access log becomes a file log to /dev/null: Envoy still formats each line (its
    cost stays in the figures) but millions of bench requests no longer write ~140 MB of logs."""
    if isinstance(node, dict):
        if node.get("name") == "envoy.access_loggers.stdout":
            node["name"] = "envoy.access_loggers.file"
            node["typed_config"] = {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": "/dev/null",
                **{k: v for k, v in node["typed_config"].items() if k != "@type"},
            }
        for value in node.values():
            _discard_access_logs(value)
    elif isinstance(node, list):
        for item in node:
            _discard_access_logs(item)
