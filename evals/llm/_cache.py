"""A persistent cache of model replies, keyed by everything that determines the reply."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evals._io import KeyValueFile

__all__ = ["CallCache", "request_key"]

_SECRET_KEYS = {"api_key", "headers", "extra_headers"}


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the request without secrets (API keys never reach the cache)."""
    clean = {k: v for k, v in request.items() if k not in _SECRET_KEYS}
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CallCache:
    """Model replies by request key; safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = KeyValueFile(self.path, "the model call cache")

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored reply, or ``None``."""
        value = self._file.get(key)
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store a reply (last write wins)."""
        self._file.put(key, value)

    def __len__(self) -> int:
        return len(self._file)
