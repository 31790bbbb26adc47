"""The output cache: what an agent version answered to a case, reusable by any later run.

Keyed by (version hash, case id, case fingerprint): the same version on the same case content
is the same call, so a rerun, or a new run after a crash, pays nothing twice. Values are the
outputs as recorded (already redacted) with their original latency, usage and cost; a hit
comes back marked ``cached``. Errors are never cached: a later run tries them again.

This is not the model request cache of ``evals.llm`` (which the judges use): that one keys on
the exact request and answers in zero seconds, which would make agent latency meaningless.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evals.llm import cache_dir
from evals.targets import Output

__all__ = ["OutputCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    version TEXT NOT NULL,
    case_id TEXT NOT NULL,
    case_hash TEXT NOT NULL,
    value TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (version, case_id, case_hash)
)
"""
_FLUSH_EVERY = 64
"""Writes are batched: one transaction per this many outputs. A crash loses at most these,
and the run journal still has them for ``--resume``."""
_QUERY_CHUNK = 500


class OutputCache:
    """SQLite store of outputs; safe across threads and processes (WAL, short transactions)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str, str, str, float]] = []
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            conn = self._connection()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    @classmethod
    def default(cls) -> OutputCache:
        """The cache under ``$IMPACTGATE_CACHE_DIR`` (or ``~/.cache/impactgate``)."""
        return cls(cache_dir() / "outputs.sqlite")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            # WAL + NORMAL: a commit is not an fsync; a power cut may lose the last batch,
            # never corrupt the file, and a lost entry only means one more call.
            self._conn.execute("PRAGMA synchronous=NORMAL")
        return self._conn

    def __getstate__(self) -> dict[str, Any]:
        self.flush()
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def get_many(self, version: str, keys: Sequence[tuple[str, str]]) -> dict[str, Output]:
        """Cached outputs of ``version`` for ``(case_id, case_hash)`` keys, by case id."""
        wanted = dict(keys)
        found: dict[str, Output] = {}
        ids = list(wanted)
        with self._lock:
            conn = self._connection()
            for start in range(0, len(ids), _QUERY_CHUNK):
                chunk = ids[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT case_id, case_hash, value FROM outputs "
                    f"WHERE version = ? AND case_id IN ({marks})",
                    (version, *chunk),
                ).fetchall()
                for case_id, case_hash, value in rows:
                    if wanted.get(case_id) == case_hash:
                        output = Output.from_record(json.loads(value))
                        found[case_id] = replace(output, cached=True)
        return found

    def put(self, version: str, case_hash: str, output: Output) -> None:
        """Remember a successful output (errors are not cached)."""
        if output.error is not None or output.text is None:
            return
        record = output.to_record()
        record["cached"] = False
        value = json.dumps(record, default=str)
        with self._lock:
            self._pending.append((version, output.case_id, case_hash, value, time.time()))
            if len(self._pending) >= _FLUSH_EVERY:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO outputs (version, case_id, case_hash, value, at) "
                "VALUES (?, ?, ?, ?, ?)",
                self._pending,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._pending.clear()

    def flush(self) -> None:
        """Write what is buffered."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush and close the connection."""
        with self._lock:
            self._flush_locked()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __len__(self) -> int:
        with self._lock:
            self._flush_locked()
            return int(self._connection().execute("SELECT COUNT(*) FROM outputs").fetchone()[0])
