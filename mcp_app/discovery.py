"""The public discovery documents: Protected Resource Metadata (RFC 9728) and the login document.

Both are built once from settings and served with CORS `*` (GET, OPTIONS), because browser-based
MCP clients read them cross-origin before they hold any token. Nothing here is secret: the
login document carries public client ids only (and Google's installed-app secret, which Google
documents as not confidential).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_pa.core import contract
from mcp_pa.core.settings import Settings

SERVER_NAME = "mcp-pa"
GOOGLE_ISSUER = "https://accounts.google.com"
CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, OPTIONS",
    "access-control-allow-headers": "mcp-protocol-version, content-type",
    "access-control-max-age": "86400",
}
CACHE = "public, max-age=3600"
LOOPBACK, DEVICE = "loopback", "device"
OIDC_SCOPES = ["openid", "profile", "email", "offline_access"]


def _servers_by_name(settings: Settings) -> dict[str, str]:
    """Each configured provider's authorization server, in the default order: Auth0, OIDC, Google, GitHub."""
    servers: dict[str, str] = {}
    if settings.auth0_issuer_url:
        servers["auth0"] = settings.auth0_issuer_url
    for p in settings.oidc_providers:
        servers[f"oidc-{p.name}"] = p.issuer
    if settings.google_client_id:
        servers["google"] = GOOGLE_ISSUER
    if settings.github_enabled:
        servers["github"] = f"{settings.github_web}/login/oauth"
    return servers


def _ordered(settings: Settings, by_name: dict[str, Any]) -> list[Any]:
    """MCP_HTTP_AUTHORIZATION_SERVERS, when set, picks and orders the providers; else the default order.

    Order matters: SDK clients try the first server, and one without dynamic client registration
    (Google) first makes them fall back to `POST <resource host>/register`, which fails.
    """
    names = settings.authorization_servers or list(by_name)
    return [by_name[name] for name in names if name in by_name]


def authorization_servers(settings: Settings) -> list[str]:
    return list(dict.fromkeys(_ordered(settings, _servers_by_name(settings))))


def protected_resource_metadata(settings: Settings, resource: str | None = None) -> dict[str, Any]:
    """RFC 9728 metadata; `resource` defaults to `<PUBLIC_URL>/mcp` (the root document passes the origin)."""
    return {
        "resource": resource or settings.resource_url,
        "authorization_servers": authorization_servers(settings),
        "scopes_supported": list(contract.SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": SERVER_NAME,
    }


def login_providers(settings: Settings) -> list[dict[str, Any]]:
    """The login clients for `mcp-pa login`, one per provider that has one, in the PRM's order."""
    entries: dict[str, dict[str, Any]] = {}
    if settings.auth0_login_client_id and settings.auth0_issuer_url:
        entries["auth0"] = {
            "name": "auth0",
            "issuer": settings.auth0_issuer_url,
            "client_id": settings.auth0_login_client_id,
            "scopes": [*OIDC_SCOPES, *contract.SCOPES[:2]],  # mcp:read mcp:write; admin comes from RBAC, not a request
            "flows": [LOOPBACK, DEVICE],
            "extra_params": {"audience": settings.auth0_audience or settings.resource_url},
            "bearer": "access_token",
        }
    for p in settings.oidc_providers:
        if p.login_client_id:
            entries[f"oidc-{p.name}"] = {
                "name": f"oidc-{p.name}",
                "issuer": p.issuer,
                "client_id": p.login_client_id,
                "scopes": OIDC_SCOPES,
                "flows": [LOOPBACK, DEVICE],
                "bearer": "access_token",
            }
    if settings.google_login_client_id and settings.google_login_client_secret:
        entries["google"] = {
            "name": "google",
            "issuer": GOOGLE_ISSUER,
            "authorization_endpoint": settings.google_authorization_url,
            "token_endpoint": settings.google_token_url,
            "revocation_endpoint": settings.google_revocation_url,
            "client_id": settings.google_login_client_id,
            "client_secret": settings.google_login_client_secret,
            "scopes": ["openid", "email", "profile"],
            "flows": [LOOPBACK],
            # offline + consent: without both Google issues no refresh token (or only on the first consent).
            "extra_params": {"access_type": "offline", "prompt": "consent"},
            "bearer": "id_token",  # the ID token's aud is this client id, which the authz service accepts
        }
    if settings.github_enabled and settings.github_client_id:
        web = settings.github_web
        entries["github"] = {
            "name": "github",
            "authorization_endpoint": f"{web}/login/oauth/authorize",
            "token_endpoint": f"{web}/login/oauth/access_token",
            "device_authorization_endpoint": f"{web}/login/device/code",
            "client_id": settings.github_client_id,
            "scopes": ["read:user", "user:email", *(["read:org"] if settings.github_allowed_orgs else [])],
            "flows": [DEVICE],  # GitHub's code exchange needs the app's secret, which stays on the server
            "bearer": "access_token",
        }
    return _ordered(settings, entries) + [e for name, e in entries.items() if settings.authorization_servers and name not in settings.authorization_servers]


def routes(settings: Settings) -> list[Route]:
    """The three public documents, with CORS preflight answered."""
    root = protected_resource_metadata(settings, resource=settings.public_url)
    mcp = protected_resource_metadata(settings)
    login = {"resource": settings.resource_url, "providers": login_providers(settings)}

    def serve(document: dict[str, Any]) -> Any:
        async def endpoint(request: Request) -> Response:
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=CORS_HEADERS)
            return JSONResponse(document, headers={"cache-control": CACHE, **CORS_HEADERS})

        return endpoint

    return [
        Route(contract.PRM_PATH, serve(root), methods=["GET", "OPTIONS"]),
        Route(contract.PRM_MCP_PATH, serve(mcp), methods=["GET", "OPTIONS"]),
        Route(contract.LOGIN_PATH, serve(login), methods=["GET", "OPTIONS"]),
    ]
