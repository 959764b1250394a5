"""Small address checks shared by every process: `--listen` values and loopback URLs."""

from __future__ import annotations

import ipaddress
import urllib.parse


def parse_listen(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`127.0.0.1:8000`, `[::1]:8000` or `:8000` → (host, port); ValueError naming the expected form."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]") or default_host, int(port)


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is `localhost` or a loopback address (127.0.0.0/8, ::1)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
