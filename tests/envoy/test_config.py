"""The canonical envoy/envoy.yaml and every variant mcp_pa.up.envoy_config derives from it."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from authz_service.mcp_request import BODY_BYTES
from mcp_pa.core import contract
from mcp_pa.core.settings import Settings
from mcp_pa.up import envoy_config
from mcp_pa.up.certs import DevCerts
from mcp_pa.up.envoy_config import EnvoyConfigError, EnvoyOptions, RateLimit

VARIANTS = {
    "ports-only": EnvoyOptions(https_port=18443, http_port=18080, admin_port=19901, authz_port=19001, app_port=18000),
    "local-run": EnvoyOptions(
        https_port=28443, http_port=28080, admin_port=29901, listen_address="127.0.0.1",
        allowed_origins=("http://localhost:6274",), trusted_hops=1,
    ),
    "small-limits": EnvoyOptions(
        per_address_limit=RateLimit(5, 0.5), per_tenant_limit=RateLimit(2, 300), max_request_bytes=1024, authz_timeout=0.25,
    ),
    "public-url-443": EnvoyOptions(public_url="https://mcp.example.com/", allowed_origins=("https://app.example.com",)),
    "behind-tls-proxy": EnvoyOptions(http_port=28080, public_url="https://mcp.example.com", behind_tls_proxy=True, trusted_hops=1),
}


def _hcm(config: dict[str, Any], listener: str = envoy_config.HTTPS_LISTENER) -> dict[str, Any]:
    return envoy_config._connection_manager(envoy_config._listener(config, listener))


def _filter_names(config: dict[str, Any], listener: str = envoy_config.HTTPS_LISTENER) -> list[str]:
    return [f["name"] for f in _hcm(config, listener)["http_filters"]]


def _origins(config: dict[str, Any]) -> list[str]:
    rules = envoy_config._http_filter(config, envoy_config.ORIGIN_FILTER)["rules"]["policies"][envoy_config.ORIGIN_POLICY]
    allowed = rules["permissions"][0]["and_rules"]["rules"][1]["not_rule"]["or_rules"]["rules"]
    return [r["header"]["string_match"]["exact"] for r in allowed]


def test_canonical_config_validates_with_only_its_certificate_directory_changed(tmp_path: Path, dev_certs: DevCerts) -> None:
    # The canonical file names /etc/mcp-pa/tls/*, which exists only where it is mounted.
    canonical = envoy_config.load_config()
    variant = envoy_config.render(EnvoyOptions(cert_dir=dev_certs.server_cert.parent))
    tls_path = ["static_resources", "listeners", 0, "filter_chains", 0, "transport_socket"]
    stripped = [copy.deepcopy(canonical), copy.deepcopy(variant)]
    for config in stripped:
        node: Any = config
        for key in tls_path[:-1]:
            node = node[key]
        node.pop(tls_path[-1])
    assert stripped[0] == stripped[1], "cert_dir changed more than the certificate paths"
    path = tmp_path / "canonical.yaml"
    path.write_text(envoy_config.dump(variant))
    envoy_config.validate(path)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_derived_variant_validates(tmp_path: Path, dev_certs: DevCerts, name: str) -> None:
    options = replace(VARIANTS[name], cert_dir=dev_certs.server_cert.parent)
    envoy_config.validate(envoy_config.write_config(tmp_path / f"{name}.yaml", options))


def test_settings_variant_validates(tmp_path: Path, dev_certs: DevCerts) -> None:
    settings = Settings(public_url="https://mcp.example.com", allowed_origins="https://a.example, https://b.example")
    options = envoy_config.options_from_settings(settings, cert_dir=dev_certs.server_cert.parent)
    path = envoy_config.write_config(tmp_path / "settings.yaml", options)
    envoy_config.validate(path)
    assert _origins(envoy_config.load_config(path)) == ["https://mcp.example.com", "https://a.example", "https://b.example"]


def test_broken_config_is_reported_with_envoys_message(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("static_resources: {listeners: [{name: x, no_such_field: 1}]}\n")
    with pytest.raises(EnvoyConfigError, match="no_such_field"):
        envoy_config.validate(path)


def test_filter_order_is_strip_origin_address_limit_body_limit_authz_tenant_limit_router() -> None:
    assert _filter_names(envoy_config.load_config()) == [
        "security_headers",
        envoy_config.ORIGIN_FILTER,
        envoy_config.PER_ADDRESS_FILTER,
        envoy_config.BODY_LIMIT_FILTER,
        envoy_config.EXT_AUTHZ_FILTER,
        "strip_credentials",
        envoy_config.PER_TENANT_FILTER,
        "envoy.filters.http.router",
    ]


def test_canonical_ext_authz_fails_closed_with_a_bounded_timeout() -> None:
    ext_authz = envoy_config._http_filter(envoy_config.load_config(), envoy_config.EXT_AUTHZ_FILTER)
    assert ext_authz["transport_api_version"] == "V3"
    assert ext_authz["failure_mode_allow"] is False
    assert ext_authz["status_on_error"] == {"code": "ServiceUnavailable"}
    assert ext_authz["grpc_service"]["timeout"] == "5s"
    # The body's first bytes go along (step-up from the JSON-RPC body), cut rather than refused.
    assert ext_authz["with_request_body"] == {"max_request_bytes": BODY_BYTES, "allow_partial_message": True, "pack_as_bytes": True}


def test_canonical_ports_match_the_contract() -> None:
    canonical = envoy_config.load_config()
    ports = {listener["name"]: listener["address"]["socket_address"]["port_value"] for listener in canonical["static_resources"]["listeners"]}
    assert ports == {"https": contract.DEFAULT_HTTPS_PORT, "http": contract.DEFAULT_HTTP_PORT}
    endpoints = {
        c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        for c in canonical["static_resources"]["clusters"]
    }
    assert endpoints["authz"] == {"address": "127.0.0.1", "port_value": contract.DEFAULT_AUTHZ_PORT}
    assert endpoints["app"] == {"address": "127.0.0.1", "port_value": contract.DEFAULT_APP_PORT}
    assert canonical["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_exact_routes_without_authz_are_the_contracts_public_paths() -> None:
    assert envoy_config.unauthenticated_paths(envoy_config.load_config()) == set(contract.PUBLIC_PATHS)


def test_render_changes_ports_certificates_and_upstreams() -> None:
    options = EnvoyOptions(
        https_port=1, http_port=2, admin_port=3, authz_port=4, app_port=5, listen_address="127.0.0.1", cert_dir=Path("/c")
    )
    config = envoy_config.render(options)
    https = envoy_config._listener(config, "https")
    assert https["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 1}
    assert envoy_config._listener(config, "http")["address"]["socket_address"]["port_value"] == 2
    assert config["admin"]["address"]["socket_address"]["port_value"] == 3
    certificate = https["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]["tls_certificates"][0]
    assert certificate == {"certificate_chain": {"filename": "/c/tls.crt"}, "private_key": {"filename": "/c/tls.key"}}
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert clusters["authz"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] == 4
    assert clusters["app"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] == 5


def test_render_never_changes_the_loaded_canonical() -> None:
    canonical = envoy_config.load_config()
    before = copy.deepcopy(canonical)
    envoy_config.render(VARIANTS["small-limits"], base=canonical)
    assert canonical == before


def _redirect(config: dict[str, Any]) -> dict[str, Any]:
    routes = _hcm(config, envoy_config.HTTP_LISTENER)["route_config"]["virtual_hosts"][0]["routes"]
    return next(r["redirect"] for r in routes if "redirect" in r)


def test_redirect_follows_the_public_url_port() -> None:
    assert _redirect(envoy_config.render(EnvoyOptions(https_port=18443)))["port_redirect"] == 18443
    assert _redirect(envoy_config.render(VARIANTS["public-url-443"]))["port_redirect"] == 443
    assert _redirect(envoy_config.load_config())["port_redirect"] == contract.DEFAULT_HTTPS_PORT


def test_rule_redirect_host_comes_from_the_public_url_never_the_clients_host() -> None:
    # Without host_redirect Envoy keeps the request's Host: `Host: evil.example` → https://evil.example.
    assert _redirect(envoy_config.load_config())["host_redirect"] == "localhost"
    assert _redirect(envoy_config.render(EnvoyOptions(public_url="https://MCP.Example.com/")))["host_redirect"] == "mcp.example.com"
    assert _redirect(envoy_config.render(EnvoyOptions(public_url="https://[::1]:9443")))["host_redirect"] == "[::1]"


def test_allowed_origins_start_with_the_public_origin_and_are_normalised() -> None:
    config = envoy_config.render(
        EnvoyOptions(public_url="https://MCP.example.com:443/", allowed_origins=("http://localhost:6274/", "https://mcp.example.com"))
    )
    assert _origins(config) == ["https://mcp.example.com", "http://localhost:6274"]


def test_rate_limits_and_body_limit_are_set_where_the_filters_read_them() -> None:
    config = envoy_config.render(VARIANTS["small-limits"])
    per_address = envoy_config._http_filter(config, envoy_config.PER_ADDRESS_FILTER)
    assert per_address["descriptors"][0]["token_bucket"] == {"max_tokens": 5, "tokens_per_fill": 5, "fill_interval": "0.5s"}
    per_tenant = envoy_config._http_filter(config, envoy_config.PER_TENANT_FILTER)
    assert per_tenant["descriptors"][0]["token_bucket"]["max_tokens"] == 2
    assert per_tenant["max_dynamic_descriptors"] >= 1000  # sized for many tenants
    assert envoy_config._http_filter(config, envoy_config.BODY_LIMIT_FILTER)["max_request_bytes"] == 1024
    assert envoy_config._http_filter(config, envoy_config.EXT_AUTHZ_FILTER)["grpc_service"]["timeout"] == "0.25s"


@pytest.mark.parametrize("requests, seconds", [(0, 1), (5, 0.01)])
def test_rate_limit_refuses_buckets_envoy_would_reject(requests: int, seconds: float) -> None:
    with pytest.raises(ValueError):
        RateLimit(requests, seconds)


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "https://"])
def test_origin_of_refuses_non_http_urls(url: str) -> None:
    with pytest.raises(ValueError):
        envoy_config.origin_of(url)


def test_missing_part_of_the_canonical_config_is_named() -> None:
    config = envoy_config.load_config()
    config["static_resources"]["clusters"] = [c for c in config["static_resources"]["clusters"] if c["name"] != "authz"]
    with pytest.raises(EnvoyConfigError, match="cluster named 'authz'"):
        envoy_config.render(EnvoyOptions(authz_port=1), base=config)


def test_command_disables_hot_restart_so_envoys_run_side_by_side(tmp_path: Path) -> None:
    command = envoy_config.envoy_command(tmp_path / "e.yaml", concurrency=2)
    assert Path(command[0]).is_file()
    assert "--disable-hot-restart" in command
    assert command[command.index("--concurrency") + 1] == "2"


def test_behind_tls_proxy_serves_the_https_chain_in_plain_http_on_the_http_port() -> None:
    config = envoy_config.render(VARIANTS["behind-tls-proxy"])
    (listener,) = config["static_resources"]["listeners"]
    assert listener["name"] == envoy_config.HTTP_LISTENER
    assert listener["address"]["socket_address"]["port_value"] == 28080
    assert "transport_socket" not in listener["filter_chains"][0]
    assert _filter_names(config, envoy_config.HTTP_LISTENER) == _filter_names(envoy_config.load_config())
    assert _hcm(config, envoy_config.HTTP_LISTENER)["xff_num_trusted_hops"] == 1


def test_command_line_renders_a_valid_variant_from_settings(tmp_path: Path, dev_certs: DevCerts) -> None:
    output = tmp_path / "out" / "envoy.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "mcp_pa.up.envoy_config", "--output", str(output), "--https-port", "18443",
         "--cert-dir", str(dev_certs.server_cert.parent), "--validate"],
        env={**os.environ, "MCP_HTTP_PUBLIC_URL": "https://mcp.example.com", "MCP_HTTP_ALLOWED_ORIGINS": "https://a.example"},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config = envoy_config.load_config(output)
    assert _origins(config) == ["https://mcp.example.com", "https://a.example"]
    assert envoy_config._listener(config, "https")["address"]["socket_address"]["port_value"] == 18443


def test_mcp_responses_may_stream_long_while_headers_and_idleness_are_bounded() -> None:
    hcm = _hcm(envoy_config.load_config())
    routes = {r["name"]: r for r in hcm["route_config"]["virtual_hosts"][0]["routes"]}
    assert routes["mcp"]["route"]["timeout"] == "0s"  # SSE: no total response timeout
    assert routes["app"]["route"]["timeout"] == "30s"
    assert hcm["request_headers_timeout"] == "10s"
    assert hcm["stream_idle_timeout"] == "300s"
    assert hcm["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
    assert hcm["use_remote_address"] is True
    assert hcm["merge_slashes"] is True and hcm["normalize_path"] is True
