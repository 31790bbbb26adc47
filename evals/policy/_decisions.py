"""A persistent cache of the injection classifier's decisions, keyed by a hash of each text.

A golden dataset's inputs and retrieved contexts are the same from one night to the next, and
a prompt or model change under CI gating does not change them either, so the classifier, by
far the slowest rule, would read the same texts every run. This cache keeps, per text, the
decision value and the span of the sentence that decided it, under SHA-256 of the weights'
fingerprint and the text: it stores no text, so it never becomes a copy of what it screened.

Writes are batched in one transaction per call. A cache that cannot be opened or written (a
read-only home, a full disk) is a warning, never a failed run: the classifier just computes.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.llm._cache import cache_dir

__all__ = ["Decision", "DecisionCache"]

Decision = tuple[float, tuple[int, int] | None]
"""A text's decision value and the span of the sentence that decided it (``None``: the whole)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    key TEXT PRIMARY KEY,
    value REAL NOT NULL,
    span_start INTEGER,
    span_end INTEGER,
    at REAL NOT NULL
)
"""
_QUERY_CHUNK = 500


def _key(fingerprint: str, text: str) -> str:
    return hashlib.sha256(f"{fingerprint}\x00{text}".encode()).hexdigest()


class DecisionCache:
    """SQLite store of classifier decisions; safe across threads and processes (WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        with self._lock:
            self._guard("open", lambda conn: conn.execute(_SCHEMA))

    @classmethod
    def default(cls) -> DecisionCache:
        """The cache under ``$IMPACTGATE_CACHE_DIR`` (or ``~/.cache/impactgate``)."""
        return cls(cache_dir() / "injection.sqlite")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _guard(self, action: str, work: Any) -> Any:
        """Run ``work(conn)``; on a database or file error, warn once and stop using the cache."""
        if self._broken:
            return None
        try:
            return work(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self._broken = True
            warnings.warn(
                f"the injection classifier's cache {self.path} could not {action} ({exc}); "
                "scoring goes on without it. Set IMPACTGATE_CACHE_DIR to a writable folder.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def get_many(self, fingerprint: str, texts: Sequence[str]) -> dict[str, Decision]:
        """The cached decisions of those ``texts`` that have one."""
        keys = {_key(fingerprint, t): t for t in dict.fromkeys(texts)}

        def read(conn: sqlite3.Connection) -> dict[str, Decision]:
            found: dict[str, Decision] = {}
            wanted = list(keys)
            for start in range(0, len(wanted), _QUERY_CHUNK):
                chunk = wanted[start : start + _QUERY_CHUNK]
                rows = conn.execute(
                    "SELECT key, value, span_start, span_end FROM decisions "
                    f"WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, value, a, b in rows:
                    found[keys[key]] = (float(value), None if a is None else (int(a), int(b)))
            return found

        with self._lock:
            return self._guard("be read", read) or {}

    def put_many(self, fingerprint: str, decisions: Mapping[str, Decision]) -> None:
        """Remember decisions (one transaction)."""
        if not decisions:
            return
        now = time.time()
        rows = [
            (_key(fingerprint, text), value, *(span if span else (None, None)), now)
            for text, (value, span) in decisions.items()
        ]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO decisions (key, value, span_start, span_end, at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        with self._lock:
            self._guard("be written", write)

    def __len__(self) -> int:
        with self._lock:
            count = self._guard(
                "be read", lambda conn: conn.execute("SELECT COUNT(*) FROM decisions").fetchone()
            )
        return int(count[0]) if count else 0

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]
