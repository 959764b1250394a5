"""Sign-in hygiene against the whole stack: no token in any log or file, refresh across a provider outage, the keyring store.

The same stack as test_login.py (`mcp-pa up` with login clients of fake Auth0, Keycloak, Google
and GitHub). `connect --login` is driven with raw JSON-RPC lines so its stdout and stderr can be
read whole, and one bridge process can be followed across the outage and the recovery.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from mcp_pa import login as login_module
from mcp_pa.core import decisions, logs
from mcp_pa.tokens import FILE_NAME, KEYRING_SERVICE, TokenStore
from tests.clients.conftest import (
    INITIALIZE,
    INITIALIZED,
    NO_KEYRING,
    BridgeRun,
    LoginStack,
    browser_allows,
    login,
    run_bridge,
    stored,
    tool_call,
)
from tests.support.processes import REPO, mcp_pa_command

# keyrings.alt's plaintext file: a real keyring backend that works without a desktop session.
PLAINTEXT_KEYRING = "keyrings.alt.file.PlaintextKeyring"


def signed_in(stack: LoginStack, provider: str, config: Path, env: dict[str, str] | None = None) -> str:
    """Log in through the browser; returns what `mcp-pa login` wrote (stdout + stderr)."""
    run = login(stack, provider, config, env=env)
    browser_allows(run.authorization_url())
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    return stdout + stderr


def expire_in_file(config: Path, stack: LoginStack, provider: str) -> None:
    store = TokenStore(config / "mcp-pa", use_keyring=False)
    entry = store.get(stack.base, provider)
    assert entry is not None
    entry.expires_at = 0.0
    store.put(entry)


def connect_whoami(stack: LoginStack, config: Path, provider: str, env: dict[str, str] | None = None) -> BridgeRun:
    """One `connect --login` run: initialize, then whoami; both must succeed."""
    run = run_bridge(stack.url, "--login", "--provider", provider, "--ca", str(stack.ca),
                     messages=[INITIALIZE, INITIALIZED, tool_call(2, "whoami")],
                     env={**NO_KEYRING, "MCP_PA_CONFIG_DIR": str(config), **(env or {})})
    answers = run.by_id()
    assert "result" in answers.get(1, {}) and "result" in answers.get(2, {}), run.stdout + run.stderr
    assert not answers[2]["result"].get("isError"), answers[2]
    return run


def leaked(secret: str, text: bytes) -> bool:
    """The whole token, or a JWT's signature (the part that makes it usable), appears in text."""
    parts = [secret] + ([secret.rsplit(".", 1)[1]] if secret.count(".") == 2 else [])
    return any(part.encode() in text for part in parts)


def test_no_issued_token_appears_in_any_log_output_or_file_after_login_and_refresh(login_stack: LoginStack, tmp_path: Path) -> None:
    config = tmp_path / "config"
    said = [signed_in(login_stack, "auth0", config), signed_in(login_stack, "google", config)]
    before = stored(config)[login_stack.base]
    refreshes = {p: getattr(login_stack, p).requests["refresh_token"] for p in ("auth0", "google")}
    for provider in ("auth0", "google"):
        expire_in_file(config, login_stack, provider)
        run = connect_whoami(login_stack, config, provider)
        said += [run.stdout, run.stderr]
    after = stored(config)[login_stack.base]
    for provider in ("auth0", "google"):  # both were refreshed: the new tokens are in the scan too
        assert getattr(login_stack, provider).requests["refresh_token"] == refreshes[provider] + 1
        assert after[provider]["bearer"] != before[provider]["bearer"]
    issued = login_stack.auth0.issued_tokens() + login_stack.google.issued_tokens()
    kept = [v for entry in after.values() for k, v in entry.items() if k in ("bearer", "refresh_token") and v]
    assert kept and set(kept) <= set(issued)  # the fakes' record covers what the client holds
    assert any(t.startswith("ya29.") for t in issued) and any(t.count(".") == 2 for t in issued)  # Google's access token, JWTs

    files = [p for p in login_stack.logs.rglob("*") if p.is_file()]
    files += [p for p in (config / "mcp-pa").rglob("*") if p.is_file() and p.name != FILE_NAME]
    log_files = [p for p in files if p.suffix == ".log"]
    assert len(log_files) >= 3, log_files  # up's own log and the services' logs under the state dir are really scanned
    found = [name for name, text in [(str(p), p.read_bytes()) for p in files] + [(f"output {i}", s.encode()) for i, s in enumerate(said)]
             for secret in issued if leaked(secret, text)]
    assert not found, f"a token appears in: {sorted(set(found))}"
    # What may be said instead: the bridge names each refreshed bearer by its fingerprint.
    assert all(logs.fingerprint(after[p]["bearer"]) in "".join(said) for p in after)


class Bridge:
    """One `connect --login` process spoken to line by line, as an MCP client does."""

    def __init__(self, stack: LoginStack, config: Path) -> None:
        self.proc = subprocess.Popen(
            mcp_pa_command("connect", stack.url, "--login", "--ca", str(stack.ca)), cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **NO_KEYRING, "MCP_PA_CONFIG_DIR": str(config)},
        )
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(json.loads(line))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def ask(self, message: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.send(message)
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer to {message['method']} within {timeout} s") from None
        assert answer.get("id") == message["id"], answer
        return answer

    def close(self) -> str:
        """End of input: the bridge exits; returns its stderr."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
        return self.proc.stderr.read().decode()


def test_an_unreachable_token_endpoint_is_retried_then_a_clear_error_and_the_next_request_refreshes(
    login_stack: LoginStack, tmp_path: Path
) -> None:
    signed_in(login_stack, "auth0", tmp_path)
    expire_in_file(tmp_path, login_stack, "auth0")
    token_path = login_stack.auth0.url("/token").removeprefix(login_stack.fake.url)
    attempts = login_stack.fake.count(token_path)
    refreshes = login_stack.auth0.requests["refresh_token"]
    bridge = Bridge(login_stack, tmp_path)
    try:
        login_stack.fake.fail(token_path, 503)
        try:
            down = bridge.ask(INITIALIZE)
        finally:
            login_stack.fake.recover()
        assert login_stack.fake.count(token_path) == attempts + login_module.REFRESH_ATTEMPTS  # retried, then given up
        error = down.get("error")
        assert error is not None and error["code"] == decisions.UNAVAILABLE, down
        assert "Could not reach auth0 to refresh the sign-in" in error["message"] and "HTTP 503" in error["message"]
        assert "try again" in error["message"] and "mcp-pa login" not in error["message"]  # not the refused-refresh advice
        # The provider is back: the next request refreshes with the same stored refresh token, no new login.
        up = bridge.ask({**INITIALIZE, "id": 2})
        assert "result" in up, up
        bridge.send(INITIALIZED)
        me = bridge.ask(tool_call(3, "whoami"))
        assert "result" in me and not me["result"].get("isError"), me
        assert me["result"]["structuredContent"]["user_id"] == "auth0:user-1"
    finally:
        stderr = bridge.close()
    assert login_stack.auth0.requests["refresh_token"] == refreshes + 1  # the failed attempts never reached the grant
    assert stderr.count("refresh failed; retrying") == login_module.REFRESH_ATTEMPTS - 1, stderr


# --- the keyring store ----------------------------------------------------------------------------


@pytest.fixture
def keyring_env(tmp_path: Path) -> dict[str, str]:
    """A real keyring backend for the subprocesses, its file kept under tmp_path (XDG_DATA_HOME)."""
    return {"PYTHON_KEYRING_BACKEND": PLAINTEXT_KEYRING, "XDG_DATA_HOME": str(tmp_path / "data")}


def keyring_entry(env: dict[str, str], server: str) -> dict[str, Any]:
    """What the subprocesses stored in the keyring for server, read with the same backend."""
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(Path(env["XDG_DATA_HOME"]) / "python_keyring" / backend.filename)
    raw = backend.get_password(KEYRING_SERVICE, server)
    assert raw, f"nothing in the keyring file {backend.file_path} for {server}"
    entry: dict[str, Any] = json.loads(raw)
    return entry


def write_keyring_entry(env: dict[str, str], server: str, entry: dict[str, Any]) -> None:
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(Path(env["XDG_DATA_HOME"]) / "python_keyring" / backend.filename)
    backend.set_password(KEYRING_SERVICE, server, json.dumps(entry))


def test_login_stores_tokens_in_the_keyring_and_connect_refreshes_them_there(
    login_stack: LoginStack, tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    config = tmp_path / "config"
    said = signed_in(login_stack, "auth0", config, env=keyring_env)
    assert "stored in the OS keyring (PlaintextKeyring)" in said
    assert not (config / "mcp-pa" / FILE_NAME).exists()  # the keyring holds them, not the file
    before = keyring_entry(keyring_env, login_stack.base)
    issued = login_stack.auth0.issued_tokens()
    assert before["auth0"]["bearer"] in issued and before["auth0"]["refresh_token"] in issued
    write_keyring_entry(keyring_env, login_stack.base, {"auth0": {**before["auth0"], "expires_at": 0.0}})
    refreshes = login_stack.auth0.requests["refresh_token"]
    connect_whoami(login_stack, config, "auth0", env=keyring_env)
    assert login_stack.auth0.requests["refresh_token"] == refreshes + 1
    after = keyring_entry(keyring_env, login_stack.base)["auth0"]
    assert after["bearer"] != before["auth0"]["bearer"] and after["expires_at"] > 0
    assert after["refresh_token"] != before["auth0"]["refresh_token"]  # the rotation was written back to the keyring
    assert not (config / "mcp-pa" / FILE_NAME).exists()


def test_a_not_recommended_keyring_that_keyring_picked_by_itself_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """keyrings.alt installed but not chosen: keyring falls back to its plaintext file; the 0600 file is used instead."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-keyringrc"))
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())  # what keyring's own detection picks on a headless box with keyrings.alt
    try:
        assert TokenStore(tmp_path).where == str(tmp_path / FILE_NAME)
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", PLAINTEXT_KEYRING)  # chosen on purpose: used as chosen
        assert TokenStore(tmp_path).where == "the OS keyring (PlaintextKeyring)"
    finally:
        keyring.set_keyring(previous)

