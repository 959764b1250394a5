"""No credential in any log: Envoy's access log, the authz service's and the app's JSON logs.

Fresh valid and invalid credentials of every kind go through the front door (and in the query
string, where a careless client might put them); after the logs are flushed, none of them, no
API key of the battery, and nothing shaped like a JWT or an API key appears in any log line.
"""

from __future__ import annotations

import secrets
import time

from mcp_pa.core import contract
from tests.security.conftest import KEYS, Stack, api_key, bearer, mcp_headers, tool_call

LOG_FLUSH_SECONDS = 1.5  # Envoy flushes its access log once a second
CREDENTIAL_SHAPES = ("eyJ", contract.API_KEY_PREFIX, "ya29.", "gho_")


def test_no_credential_reaches_any_log(stack: Stack) -> None:
    valid_token = stack.google_token(sub="logs-1")
    wrong_key = f"{contract.API_KEY_PREFIX}logs_{secrets.token_hex(16)}"
    forged = valid_token[:-4] + "AAAA"
    sent = [valid_token, wrong_key, forged, KEYS["alice"]]
    statuses = [
        stack.rpc(bearer(valid_token), tool_call("whoami")).status,
        stack.rpc({contract.HEADER_API_KEY: wrong_key}, tool_call("whoami")).status,
        stack.rpc(bearer(forged), tool_call("whoami")).status,
        stack.request("POST", f"{contract.MCP_PATH}?access_token={KEYS['alice']}", mcp_headers(api_key("alice")), b"{}").status,
    ]
    assert statuses[:3] == [200, 401, 401], statuses
    time.sleep(LOG_FLUSH_SECONDS)
    logs = {
        "envoy": stack.envoy.log_path.read_text(errors="replace"),
        "authz": stack.authz.log_path.read_text(errors="replace"),
        "app": stack.app.log_path.read_text(errors="replace"),
    }
    assert all(logs.values()), "a log is empty: the check would prove nothing"
    for name, text in logs.items():
        for secret in [*sent, *KEYS.values()]:
            assert secret not in text, f"{name} log holds a credential"
        for shape in CREDENTIAL_SHAPES:
            assert shape not in text, f"{name} log holds something shaped like a credential ({shape}…)"
