"""Checking a URL before anything is sent to it (contract fields and environment values)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["url_problem"]

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def url_problem(url: str) -> str | None:
    """What is wrong with an ``http(s)`` URL, in words, or ``None`` when it can be used."""
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "a URL may not be empty or contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"the scheme must be http or https, not {parts.scheme or 'missing'!r}"
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if host.startswith("[") or ":" in host:
        return None  # an IPv6 literal; urlsplit has parsed it already
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"the host {host!r} is not a valid host name"
    if not _HOST.match(ascii_host):
        return f"the host {host!r} is not a valid host name"
    if port is not None and not 0 < port < 65536:
        return f"the port {port} is out of range"
    return None
