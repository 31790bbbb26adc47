"""Secrets: API-key and token shapes, credentials assigned in text, and private keys."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from evals.policy._detectors import Match

__all__ = ["SHAPES", "find_api_keys", "find_private_keys"]

SHAPES: dict[str, re.Pattern[str]] = {
    "anthropic": re.compile(r"\bsk-ant-[a-z]{3,8}\d{2}-[A-Za-z0-9_-]{20,}"),
    "openai": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?(?!ant-)[A-Za-z0-9_-]{20,}"),
    "aws_access_key": re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    "github": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{40,255})\b"),
    "gitlab": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    "slack": re.compile(
        r"\bxox[abeprs]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"
    ),
    "stripe": re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    "google_api": re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "bearer": re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{20,}=*)"),
    "password_assignment": re.compile(
        r"(?i)\b(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?token|"
        r"auth[_-]?token|client[_-]?secret|aws_secret_access_key)\b[\"']?\s*(?:[:=]|\bis\b)\s*"
        r"[\"']?([^\s\"',;<>]{8,})"
    ),
}
"""Shape name → pattern; where a pattern has a group, the group is the secret."""

# Placeholders in documentation and templates are not secrets.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|<.*>|\{.*\}|\$\{?.*|%.*%|your[_-].*|example.*|changeme|redacted|"
    r"placeholder|none|null|undefined|password\d*|secret|\[.*\])$"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _looks_secret(value: str) -> bool:
    """A credential value: not a placeholder, mixed characters, not a plain word."""
    if _PLACEHOLDER.match(value):
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    return classes >= 2 and _entropy(value) >= 2.5


def find_api_keys(text: str, shapes: Sequence[str] = ()) -> Iterator[Match]:
    """API keys, tokens and assigned credentials of the given shapes (all when empty)."""
    taken: list[tuple[int, int]] = []
    for name in shapes or SHAPES:
        for m in SHAPES[name].finditer(text):
            group = 1 if m.re.groups else 0
            start, end = m.span(group)
            value = m.group(group)
            if name == "password_assignment" and not _looks_secret(value):
                continue
            if any(start < b and end > a for a, b in taken):
                continue
            taken.append((start, end))
            yield Match(start, end, value)


_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?"
    r"|PuTTY-User-Key-File-\d+:[^\n]*"
)


def find_private_keys(text: str) -> Iterator[Match]:
    """PEM, OpenSSH, PGP and PuTTY private keys (the whole block when it is complete)."""
    for m in _PRIVATE_KEY.finditer(text):
        yield Match(m.start(), m.end(), m.group(0))
