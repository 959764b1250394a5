"""Where `mcp-pa login` keeps tokens for `connect --login`: the OS keyring, else a 0600 file.

One entry per server (its base URL) holding every provider signed in there. The file fallback
is `<MCP_PA_CONFIG_DIR or the user config dir>/mcp-pa/tokens.json`, replaced atomically (write
a 0600 temporary file, fsync, rename) under a lock, so a bridge storing a rotated refresh
token and a `login` running beside it never lose each other's writes. Nothing here logs a token.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

KEYRING_SERVICE = "mcp-pa"
CONFIG_DIR_ENV = "MCP_PA_CONFIG_DIR"
FILE_NAME = "tokens.json"


@dataclass
class StoredLogin:
    """One sign-in: the bearer sent to the server and what refreshing it needs."""

    server: str  # the server's base URL (scheme://host[:port])
    provider: str  # a `name` of the server's login document
    bearer: str
    expires_at: float | None  # epoch seconds; None: the provider gives no expiry (GitHub OAuth apps)
    bearer_kind: str = "access_token"  # or "id_token" (Google)
    refresh_token: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    client_id: str = ""
    client_secret: str | None = None  # only a provider's non-confidential installed-app secret (Google)
    scope: str = ""
    saved_at: float = field(default_factory=time.time)

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at - seconds <= (time.time() if now is None else now)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StoredLogin":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def config_dir() -> Path:
    """`MCP_PA_CONFIG_DIR`, else the platform's user config dir, plus `mcp-pa`."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override) / "mcp-pa"
    import platformdirs

    return Path(platformdirs.user_config_dir()) / "mcp-pa"


def _usable_keyring() -> Any | None:
    """The keyring backend to store tokens in, or None for the 0600 file.

    None when there is no keyring (headless Linux, containers: keyring's fail or null backend),
    and when keyring picked on its own a backend it rates "not recommended" (priority below 1,
    such as keyrings.alt's plaintext file): our 0600 file is no worse. A backend the user chose
    (PYTHON_KEYRING_BACKEND or keyringrc.cfg) is used as chosen.
    """
    try:
        import keyring
        from keyring.backends import chainer, fail
        from keyring.util import platform_
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        chosen = bool(os.environ.get("PYTHON_KEYRING_BACKEND")) or (platform_.config_root() / "keyringrc.cfg").exists()
    except Exception:  # a broken keyring configuration must not stop sign-in: the file still works
        return None
    if isinstance(backend, fail.Keyring) or type(backend).__module__.startswith("keyring.backends.null"):
        return None
    inner = backend.backends if isinstance(backend, chainer.ChainerBackend) else [backend]
    if not inner:
        return None
    if not chosen and max(_priority(b) for b in inner) < 1:
        return None
    return backend


def _priority(backend: Any) -> float:
    try:
        return float(backend.priority)
    except Exception:  # a backend whose priority check fails (no D-Bus, no daemon) is not usable
        return -1.0


class TokenStore:
    """Stored logins keyed by server and provider; `where` says which storage is in use."""

    def __init__(self, directory: Path | None = None, use_keyring: bool | None = None) -> None:
        self.directory = directory or config_dir()
        self._keyring = _usable_keyring() if use_keyring in (None, True) else None

    @property
    def where(self) -> str:
        return f"the OS keyring ({type(self._keyring).__name__})" if self._keyring is not None else str(self.path)

    @property
    def path(self) -> Path:
        return self.directory / FILE_NAME

    # ---- public operations ----------------------------------------------------------
    def get(self, server: str, provider: str | None = None) -> StoredLogin | None:
        """The login for provider at server; without provider, the only (or newest) one there."""
        logins = self.logins(server)
        if provider is not None:
            return logins.get(provider)
        if not logins:
            return None
        return max(logins.values(), key=lambda login: login.saved_at)

    def logins(self, server: str) -> dict[str, StoredLogin]:
        entry = self._read_server(server)
        return {name: StoredLogin.from_json(data) for name, data in entry.items()}

    def put(self, login: StoredLogin) -> None:
        login.saved_at = time.time()
        with self._locked():
            entry = self._read_server(login.server)
            entry[login.provider] = asdict(login)
            self._write_server(login.server, entry)

    def delete(self, server: str, provider: str | None = None) -> list[StoredLogin]:
        """Forget one provider's login (or every login) at server; returns what was removed."""
        with self._locked():
            entry = self._read_server(server)
            names = [provider] if provider is not None else list(entry)
            removed = [StoredLogin.from_json(entry.pop(name)) for name in names if name in entry]
            self._write_server(server, entry)
        return removed

    # ---- storage ----------------------------------------------------------------------
    def _read_server(self, server: str) -> dict[str, Any]:
        if self._keyring is not None:
            raw = self._keyring.get_password(KEYRING_SERVICE, server)
            return json.loads(raw) if raw else {}
        return dict(self._read_file().get(server, {}))

    def _write_server(self, server: str, entry: dict[str, Any]) -> None:
        if self._keyring is not None:
            if entry:
                self._keyring.set_password(KEYRING_SERVICE, server, json.dumps(entry))
            else:
                with contextlib.suppress(Exception):  # already absent
                    self._keyring.delete_password(KEYRING_SERVICE, server)
            return
        data = self._read_file()
        if entry:
            data[server] = entry
        else:
            data.pop(server, None)
        self._write_file(data)

    def _read_file(self) -> dict[str, Any]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{self.path} is not valid JSON ({exc}); delete it and run `mcp-pa login` again") from exc
        return data if isinstance(data, dict) else {}

    def _write_file(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file 0600 from the start: the tokens are never readable by others, not even briefly.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tokens-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write across processes (bridges of several clients, a login)."""
        try:
            import fcntl
        except ImportError:  # Windows: the keyring is the store there; the file race is accepted
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / ".tokens.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
