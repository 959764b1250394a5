"""`mcp-pa connect` against the fake front door: framing, credentials, token refresh, error mapping."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import mcp_types
import pytest
from mcp.client import streamable_http
from mcp.shared import inbound
from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import LATEST_MODERN_VERSION, MODERN_PROTOCOL_VERSIONS

from mcp_pa import connect
from mcp_pa.cli import build_parser
from mcp_pa.core import contract
from tests.clients.conftest import INITIALIZE, INITIALIZED, request, run_bridge, tool_call
from tests.clients.front_door import API_KEY, FrontDoor
from tests.support.processes import free_port

KEY_ENV = {"PA_KEY": API_KEY}


@pytest.mark.parametrize("flavour", ["sse", "json"])
def test_api_key_is_sent_on_every_request_and_answers_come_back_one_per_line(front_door: FrontDoor, flavour: str) -> None:
    front_door.gate.seen.clear()
    run = run_bridge(
        front_door.url(flavour),
        "--api-key-env",
        "PA_KEY",
        env=KEY_ENV,
        messages=[INITIALIZE, INITIALIZED, request(2, "tools/list"), tool_call(3, "echo", {"text": "grüße"})],
    )
    assert run.returncode == 0, run.stderr
    assert len(run.messages) == 3, "the notification must get no line, each request exactly one"
    answers = run.by_id()
    assert answers[1]["result"]["serverInfo"]["name"] == "front-door-fake"
    assert "echo" in {t["name"] for t in answers[2]["result"]["tools"]}
    assert answers[3]["result"]["content"][0]["text"] == "grüße"
    assert len(front_door.gate.seen) == 4
    assert all(h.get(contract.HEADER_API_KEY) == API_KEY for h in front_door.gate.seen)
    call = front_door.gate.seen[-1]
    assert (call[contract.HEADER_MCP_METHOD], call[contract.HEADER_MCP_NAME]) == ("tools/call", "echo")
    run.assert_secret_absent(API_KEY)


def test_front_door_denials_become_jsonrpc_errors_that_say_what_to_do(front_door: FrontDoor) -> None:
    names = ["deny_401", "deny_403_scope", "deny_403_policy", "deny_429", "deny_503"]
    run = run_bridge(
        front_door.url("json"),
        "--api-key-env",
        "PA_KEY",
        env=KEY_ENV,
        messages=[tool_call(i, name) for i, name in enumerate(names, start=10)],
    )
    assert run.returncode == 0, run.stderr
    errors = {i: m["error"] for i, m in run.by_id().items()}
    assert errors[10]["code"] == connect.UNAUTHORIZED
    assert "HTTP 401" in errors[10]["message"] and "revoked" in errors[10]["message"]
    assert "$PA_KEY" in errors[10]["message"], "a 401 must say which credential to fix"
    assert errors[11]["code"] == connect.FORBIDDEN
    assert "mcp:write" in errors[11]["message"] and errors[11]["data"]["error"] == "insufficient_scope"
    assert errors[12]["code"] == connect.FORBIDDEN and "suspended" in errors[12]["message"]
    assert errors[13]["code"] == connect.RATE_LIMITED and "Wait 1 second and try again" in errors[13]["message"]
    assert errors[14]["code"] == connect.UNAVAILABLE and "7 seconds" in errors[14]["message"]
    assert errors[14]["data"]["retry_after"] == 7
    run.assert_secret_absent(API_KEY)


def test_missing_credential_gets_a_401_error_naming_the_flags(front_door: FrontDoor) -> None:
    run = run_bridge(front_door.url("json"), messages=[request(1, "tools/list")])
    error = run.by_id()[1]["error"]
    assert error["code"] == connect.UNAUTHORIZED
    assert "--api-key-env" in error["message"] and "--token-command" in error["message"]


def _token_command(tmp_path: Path) -> tuple[str, Path]:
    """A command printing `token-<n>` on its n-th run, counting runs in a file."""
    counter = tmp_path / "runs"
    script = tmp_path / "token.py"
    script.write_text(
        "import pathlib, sys\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "print(f'token-{n}')\n"
    )
    return shlex.join([sys.executable, str(script), str(counter)]), counter


def _bearers(door: FrontDoor) -> list[str]:
    return [h.get(contract.HEADER_AUTHORIZATION, "") for h in door.gate.seen]


def test_token_command_is_run_again_on_401_and_the_request_retried_once(front_door: FrontDoor, tmp_path: Path) -> None:
    command, counter = _token_command(tmp_path)
    front_door.gate.tokens = {"token-2"}  # the first token is already stale
    front_door.gate.seen.clear()
    run = run_bridge(front_door.url("sse"), "--token-command", command, messages=[tool_call(5, "echo", {"text": "ok"})])
    assert run.by_id()[5]["result"]["content"][0]["text"] == "ok"
    assert counter.read_text() == "2"
    assert _bearers(front_door) == ["Bearer token-1", "Bearer token-2"]
    run.assert_secret_absent("token-1")
    run.assert_secret_absent("token-2")


def test_token_refused_again_after_refresh_is_a_401_error_without_a_second_retry(
    front_door: FrontDoor, tmp_path: Path
) -> None:
    command, counter = _token_command(tmp_path)
    front_door.gate.tokens = set()
    front_door.gate.seen.clear()
    run = run_bridge(front_door.url("json"), "--token-command", command, messages=[tool_call(6, "echo", {"text": "x"})])
    error = run.by_id()[6]["error"]
    assert error["code"] == connect.UNAUTHORIZED and "running the command again" in error["message"]
    assert counter.read_text() == "2"
    assert len(front_door.gate.seen) == 2


def test_failing_token_command_is_reported_as_an_error_not_sent(front_door: FrontDoor) -> None:
    front_door.gate.seen.clear()
    run = run_bridge(front_door.url("json"), "--token-command", "false", messages=[request(1, "tools/list")])
    error = run.by_id()[1]["error"]
    assert error["code"] == connect.UNAUTHORIZED and "exit status 1" in error["message"]
    assert front_door.gate.seen == []


def test_unreachable_server_is_a_connection_error_with_advice() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    run = run_bridge(url, "--api-key-env", "PA_KEY", env=KEY_ENV, messages=[request(1, "tools/list")])
    error = run.by_id()[1]["error"]
    assert error["code"] == -32000 and "Cannot reach" in error["message"]
    run.assert_secret_absent(API_KEY)


def test_a_line_that_is_not_json_gets_a_parse_error_and_the_bridge_goes_on(front_door: FrontDoor) -> None:
    run = run_bridge(
        front_door.url("json"), "--api-key-env", "PA_KEY", env=KEY_ENV, raw=b"{not json\n", messages=[request(2, "tools/list")]
    )
    parse_error, answer = run.messages
    assert parse_error["id"] is None and parse_error["error"]["code"] == -32700
    assert answer["id"] == 2 and "tools" in answer["result"]


def test_cancelling_a_modern_request_aborts_it_without_an_answer(front_door: FrontDoor) -> None:
    meta = {PROTOCOL_VERSION_META_KEY: LATEST_MODERN_VERSION, CLIENT_CAPABILITIES_META_KEY: {}}
    slow = request(7, "tools/call", {"name": "slow", "arguments": {}, "_meta": meta})
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    # run_bridge's timeout (60 s) is far below the tool's 600 s: finishing at all proves the abort.
    run = run_bridge(front_door.url("sse"), "--api-key-env", "PA_KEY", env=KEY_ENV, messages=[slow, cancel])
    assert run.returncode == 0
    assert run.messages == []


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--api-key-env", "PA_NOT_SET"], "PA_NOT_SET"),
        (["--api-key-env", ""], "not set or empty"),
        (["--token-command", ""], "empty"),
        (["--token-command", "print-token 'unclosed"], "No closing quotation"),
        (["--ca", "/nonexistent/ca.pem"], "no such file"),
        (["--ca", __file__], "not a PEM"),
    ],
)
def test_bad_credential_or_ca_arguments_are_refused_with_a_clear_message(argv: list[str], complaint: str) -> None:
    args = build_parser().parse_args(["connect", "http://127.0.0.1:1/mcp", *argv])
    with pytest.raises(ValueError, match=complaint):
        connect.build_credential(args)
        connect.build_verify(args.ca)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mcp.example.com/mcp", "use https"),
        ("ftp://127.0.0.1/mcp", "not an http"),
        ("mcp.example.com/mcp", "not an http"),
    ],
)
def test_urls_that_would_leak_the_credential_or_cannot_work_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        connect.check_url(url)


def test_a_refused_argument_stops_the_process_with_status_2_and_no_traceback() -> None:
    run = run_bridge("http://mcp.example.com/mcp", "--api-key-env", "PA_KEY", env=KEY_ENV, messages=[request(1, "tools/list")])
    assert run.returncode == 2
    assert "use https" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_the_bridge_speaks_the_installed_sdks_wire_names() -> None:
    """connect.py writes these out to start fast; they must stay what the SDK sends and expects."""
    assert connect.MCP_SESSION_ID_HEADER == streamable_http.MCP_SESSION_ID
    assert connect.MCP_PROTOCOL_VERSION_HEADER == inbound.MCP_PROTOCOL_VERSION_HEADER
    assert (contract.HEADER_MCP_METHOD, contract.HEADER_MCP_NAME) == (inbound.MCP_METHOD_HEADER, inbound.MCP_NAME_HEADER)
    assert connect.PROTOCOL_VERSION_META_KEY == PROTOCOL_VERSION_META_KEY
    assert connect.MODERN_PROTOCOL_VERSIONS == MODERN_PROTOCOL_VERSIONS
    assert dict(inbound.NAME_BEARING_METHODS) == connect.NAME_BEARING_METHODS
    codes = ("PARSE_ERROR", "INVALID_REQUEST", "INTERNAL_ERROR", "CONNECTION_CLOSED")
    assert [getattr(connect, c) for c in codes] == [getattr(mcp_types, c) for c in codes]
    sdk_codes = {v for k, v in vars(mcp_types).items() if k.isupper() and isinstance(v, int)}
    assert not sdk_codes & {connect.UNAUTHORIZED, connect.FORBIDDEN, connect.RATE_LIMITED, connect.UNAVAILABLE}
    for value in ["echo", "pa://todos", " padded", "grüße", "=?base64?Zm9v?=", "tab\there", ""]:
        assert connect.encode_header_value(value) == inbound.encode_header_value(value), value
