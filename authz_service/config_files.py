"""The files the service reads (keys file, tenants file): value checks and reloading.

Each check raises ValueError naming where in the file the bad value is, so a start-up error or
a reload log line tells the operator exactly what to fix. `WatchedFile` re-reads a file when it
changes and keeps the last good version when the new one is broken.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Generic, TypeVar

from mcp_pa.core.contract import parse_permissions

log = logging.getLogger("authz.files")

T = TypeVar("T")
RELOAD_INTERVAL = 1.0  # seconds between stat() calls of a watched file


class WatchedFile(Generic[T]):
    """A parsed file, re-read when its mtime or size changes (stat() at most once per interval).

    At start a missing or broken file raises ValueError naming `setting`; later, a broken or
    vanished file is logged as an error and `value` keeps the last good version.
    """

    def __init__(
        self, path: Path, parse: Callable[[str], T], *, setting: str, what: str, on_change: Callable[[], None] | None = None
    ) -> None:
        self.path = path
        self.parse = parse
        self.what = what
        self.on_change = on_change
        self._stamp: tuple[int, int] | None = None
        self._checked_at = time.monotonic()
        try:
            self.value: T = self._read()
        except ValueError as exc:
            raise ValueError(f"{setting}={path}: {exc}") from exc
        log.info(f"{what} loaded", extra={"path": str(path)})

    def _read(self) -> T:
        """Parse the file and remember its stamp; ValueError says why it is unusable."""
        try:
            stat = self.path.stat()
            self._stamp = (stat.st_mtime_ns, stat.st_size)
            return self.parse(self.path.read_text())
        except FileNotFoundError:
            raise ValueError("does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(str(exc)) from exc

    def _unchanged(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError:
            return False
        return (stat.st_mtime_ns, stat.st_size) == self._stamp

    def maybe_reload(self) -> None:
        """Re-read the file if it changed; stat() at most once per RELOAD_INTERVAL."""
        now = time.monotonic()
        if now - self._checked_at < RELOAD_INTERVAL:
            return
        self._checked_at = now
        if self._unchanged():
            return
        try:
            value = self._read()
        except ValueError as exc:
            log.error(f"{self.what} is invalid; keeping the last good version", extra={"path": str(self.path), "reason": str(exc)})
            return
        self.value = value
        log.info(f"{self.what} loaded", extra={"path": str(self.path)})
        if self.on_change is not None:
            self.on_change()


def permissions_value(raw: object, where: str) -> frozenset[str]:
    """A permission list written as YAML list or as `read,write`."""
    try:
        return parse_permissions(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def bool_value(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{where} must be true or false")
    return raw
