"""A persistent cache of model replies, keyed by everything that determines the reply."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["CallCache", "cache_dir", "request_key"]

_SECRET_KEYS = {"api_key", "headers", "extra_headers"}


def cache_dir() -> Path:
    """Where caches live: ``$IMPACTGATE_CACHE_DIR``, else ``~/.cache/impactgate``."""
    return Path(os.environ.get("IMPACTGATE_CACHE_DIR") or Path.home() / ".cache" / "impactgate")


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the request without secrets (API keys never reach the cache)."""
    clean = {k: v for k, v in request.items() if k not in _SECRET_KEYS}
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CallCache:
    """SQLite key → JSON store; safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL, at REAL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored reply, or ``None``."""
        with self._lock, self._connect() as conn:
            row = conn.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store a reply (last write wins)."""
        text = json.dumps(value, default=str)
        with self._lock, self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO calls (key, value, at) VALUES (?, ?, ?)",
                (key, text, time.time()),
            )

    def __len__(self) -> int:
        with self._lock, self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
