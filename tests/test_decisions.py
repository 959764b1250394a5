"""The decision table in mcp_pa/core/decisions.py is the one source: the docs, Envoy's config, the authz errors and the bridge agree with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from authz_service import errors
from mcp_pa import connect
from mcp_pa.core import decisions
from mcp_pa.core.decisions import Answerer, Challenge, Decision

REPO = Path(__file__).resolve().parent.parent
ARCHITECTURE = REPO / "docs" / "architecture.md"
ENVOY_YAML = REPO / "envoy" / "envoy.yaml"

DOC_CHALLENGES = {
    Challenge.NONE: "—",
    Challenge.METADATA: '`Bearer resource_metadata="<PUBLIC_URL>/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write"`',
    Challenge.ERROR: '`Bearer error="<error>", error_description="…", resource_metadata="…"`',
    Challenge.SCOPE: '`Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="…"`',
}


def _doc_row(decision: Decision) -> list[str]:
    """The cells docs/architecture.md must show for a row of the table."""
    return [
        f"`{decision.name}`",
        decision.answered_by.value,
        decision.situation,
        f"≥{decision.http_status}" if decision.or_above else str(decision.http_status),
        f"`{decision.error}`",
        DOC_CHALLENGES[decision.challenge],
        "—" if decision.retry_after is None else str(decision.retry_after),
        "yes" if decision.cacheable else "no",
        str(decision.jsonrpc_code),
    ]


def _split_cells(line: str) -> list[str]:
    # A `|` inside backticks (e.g. `auth0|abc`) is part of the cell, not a separator.
    cells, current, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def _documented_rows() -> list[list[str]]:
    text = ARCHITECTURE.read_text()
    section = text.split("## Decisions (authz_service)", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(lines) > 2, "docs/architecture.md has no decision table"
    return [_split_cells(line) for line in lines[2:]]  # header and |---| rule


def test_architecture_doc_shows_every_row_of_the_decision_table_in_order() -> None:
    rows = _documented_rows()
    assert rows[0][:3] == ["valid credential", "authz", "request goes on"], "the allow row stays first"
    assert rows[1:] == [_doc_row(d) for d in decisions.DECISIONS]


def test_row_names_are_unique_and_found_by_name() -> None:
    names = [d.name for d in decisions.DECISIONS]
    assert len(names) == len(set(names))
    assert all(decisions.by_name(n).name == n for n in names)
    with pytest.raises(KeyError, match="no decision named 'nope'"):
        decisions.by_name("nope")


def test_every_authz_row_has_exactly_one_exception() -> None:
    classes = [errors.MissingCredential, errors.InvalidRequest, errors.InvalidToken, errors.AccessDenied, errors.InsufficientScope, errors.ProviderUnavailable]
    assert {c.__name__ for c in errors.Denied.__subclasses__()} == {c.__name__ for c in classes}
    assert sorted(c.decision.name for c in classes) == sorted(d.name for d in decisions.DECISIONS if d.answered_by is Answerer.AUTHZ)
    for cls in classes:
        assert cls.decision.grpc_code, f"{cls.__name__} has no gRPC status"


@pytest.mark.parametrize("decision", [d for d in decisions.DECISIONS if d.answered_by is Answerer.AUTHZ], ids=lambda d: d.name)
def test_authz_exception_attributes_come_from_its_row(decision: Decision) -> None:
    cls = next(c for c in errors.Denied.__subclasses__() if c.decision is decision)
    denied = cls("why", "write") if cls is errors.InsufficientScope else cls("why")
    assert (denied.http_status, denied.error, denied.cacheable) == (decision.http_status, decision.error, decision.cacheable)


# --- Envoy's local replies (config level; tests/envoy/test_local_replies.py runs them) --------


def _local_reply_mappers(listener: str) -> list[dict[str, Any]]:
    config = yaml.safe_load(ENVOY_YAML.read_text())
    (found,) = [entry for entry in config["static_resources"]["listeners"] if entry["name"] == listener]
    manager = found["filter_chains"][0]["filters"][0]["typed_config"]
    return list(manager["local_reply_config"]["mappers"])


def _status_filter(mapper: dict[str, Any]) -> dict[str, Any]:
    """The status_code_filter of a mapper, alone or inside its and_filter."""
    filters = mapper["filter"].get("and_filter", {}).get("filters", [mapper["filter"]])
    (comparison,) = [f["status_code_filter"]["comparison"] for f in filters if "status_code_filter" in f]
    return dict(comparison)


def _is_authz_pass_through(mapper: dict[str, Any]) -> bool:
    return mapper["filter"] == {"response_flag_filter": {"flags": ["UAEX"]}} and set(mapper) == {"filter"}


def _mapper_as_row(mapper: dict[str, Any]) -> tuple[str, int, str, str, int | None]:
    comparison = _status_filter(mapper)
    body = mapper["body_format_override"]["json_format"]
    assert set(body) == {"error", "error_description"}, body
    retry = [h["header"]["value"] for h in mapper.get("headers_to_add", []) if h["header"]["key"].lower() == "retry-after"]
    return comparison["op"], comparison["value"]["default_value"], body["error"], body["error_description"], int(retry[0]) if retry else None


def _row_as_mapper(decision: Decision) -> tuple[str, int, str, str, int | None]:
    return "GE" if decision.or_above else "EQ", decision.http_status, decision.error, decision.description or "", decision.retry_after


@pytest.mark.parametrize("listener", ["https", "http"])
def test_envoy_local_replies_are_the_tables_envoy_rows_in_mapper_order(listener: str) -> None:
    mappers = _local_reply_mappers(listener)
    # The authz service's own denials pass through untouched, right after the authz-error mapper.
    assert sum(map(_is_authz_pass_through, mappers)) == 1
    assert _is_authz_pass_through(mappers[1])
    local = [m for m in mappers if not _is_authz_pass_through(m)]
    assert [_mapper_as_row(m) for m in local] == [_row_as_mapper(d) for d in decisions.ENVOY_REPLIES]


def test_authz_unavailable_mapper_matches_only_ext_authz_errors() -> None:
    first = _local_reply_mappers("https")[0]
    assert decisions.ENVOY_REPLIES[0] is decisions.AUTHZ_UNAVAILABLE
    filters = first["filter"]["and_filter"]["filters"]
    assert {"response_flag_filter": {"flags": ["UAEX"]}} in filters
    assert any("ext_authz_error" in f.get("extension_filter", {}).get("typed_config", {}).get("expression", "") for f in filters)


def test_deployed_envoy_config_is_the_canonical_one() -> None:
    assert (REPO / "deploy" / "k8s" / "envoy.yaml").read_bytes() == ENVOY_YAML.read_bytes()


# --- the bridge -------------------------------------------------------------------------------


def _bridge_error(decision: Decision, status: int | None = None) -> connect.BridgeError:
    description = (decision.description or "why").format(reason="missing identity header(s)")
    rendered = decisions.reply(decision, description, resource_metadata="https://x/m", scope="mcp:write")
    response = httpx.Response(status or rendered.status, headers=rendered.headers, json=rendered.body)
    return connect.status_error(response, response.content, connect.Credential())


@pytest.mark.parametrize("decision", decisions.DECISIONS, ids=lambda d: d.name)
def test_bridge_answers_each_rows_jsonrpc_code_with_its_message(decision: Decision) -> None:
    error = _bridge_error(decision)
    expected = decisions.for_reply(decision.http_status, decision.error)
    assert expected is not None and error.code == expected.jsonrpc_code
    # Rows that share a status and error code (the 503s, the 401s) share the bridge's words too.
    assert (expected.jsonrpc_code, expected.bridge_message) == (decision.jsonrpc_code, decision.bridge_message)
    assert f"HTTP {decision.http_status}" in error.message
    assert not re.search(r"\{\w+\}", error.message), f"unfilled placeholder in {error.message!r}"
    if decision.retry_after is not None:
        assert error.data is not None and error.data["retry_after"] == decision.retry_after
        assert f"{decision.retry_after} second" in error.message


def test_bridge_maps_any_5xx_envoy_answers_to_unavailable() -> None:
    assert _bridge_error(decisions.UPSTREAM_UNAVAILABLE, status=504).code == decisions.UNAVAILABLE


def test_bridge_answers_an_unknown_status_with_the_generic_message() -> None:
    response = httpx.Response(418, text="teapot")
    error = connect.status_error(response, response.content, connect.Credential())
    assert (error.code, error.message) == (decisions.INTERNAL_ERROR, "The server answered HTTP 418.")


def test_bridge_codes_are_the_tables() -> None:
    assert (connect.UNAUTHORIZED, connect.FORBIDDEN, connect.RATE_LIMITED, connect.UNAVAILABLE, connect.INTERNAL_ERROR) == (
        -32010,
        -32011,
        -32012,
        -32013,
        -32603,
    )
