"""Small I/O pieces the engine shares: the cache folder, atomic writes, one key/value store.

Where caches live, the one atomic file write, and the one SQLite key/value store behind every
cache.

Each exists once so each has one policy: a file appears whole or not at all; a cache is an
optimisation that never fails a run (a broken or read-only cache warns once and is bypassed).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = ["KeyValueFile", "atomic_open", "atomic_write_text", "cache_dir"]

CACHE_ENV = "IMPACTGATE_CACHE_DIR"


def cache_dir() -> Path:
    """Where caches live: ``$IMPACTGATE_CACHE_DIR``, else ``~/.cache/impactgate``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "impactgate")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block succeeds.

    Readers see the old file or the whole new one, never a half-written one; on an exception
    the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the file to write.
        mode: ``"w"`` (UTF-8 text) or ``"wb"``.
    """
    if mode not in {"w", "wb"}:
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), not {mode!r}")
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open(mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str | Iterable[str]) -> None:
    """Write ``text`` (a string, or lines/chunks as they are produced) to ``path`` atomically."""
    with atomic_open(path) as handle:
        if isinstance(text, str):
            handle.write(text)
        else:
            for chunk in text:
                handle.write(chunk)


T = TypeVar("T")

_QUERY_CHUNK = 500


class KeyValueFile:
    """A persistent ``key → JSON value`` map in a SQLite file, shared by threads and processes.

    One policy for every cache: WAL with ``synchronous=NORMAL`` (a power cut may lose the last
    writes, never corrupt the file), writes buffered and committed in one ``BEGIN IMMEDIATE``
    transaction every ``batch`` puts, last write wins. Any database or file error warns once and
    turns the cache off for this process: a lost cache entry only costs a recomputation.

    Args:
        path: the SQLite file (created with its folder when missing).
        name: what the cache holds, for the warning (``the output cache``).
        batch: puts buffered before a commit; ``flush`` or ``close`` commits the rest.
    """

    def __init__(self, path: str | Path, name: str, *, batch: int = 1) -> None:
        self.path = Path(path)
        self.name = name
        self.batch = max(1, batch)
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        with self._lock:
            self._guard("be opened", lambda conn: None)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL, at REAL NOT NULL)"
            )
            self._conn = conn
        return self._conn

    def _guard(self, action: str, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run ``work(conn)``; on a database or file error, warn once and stop using the file."""
        if self._broken:
            return None
        try:
            return work(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self._broken = True
            warnings.warn(
                f"{self.name} ({self.path}) could not {action} ({exc}); going on without it. "
                f"Set {CACHE_ENV} to a writable folder.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of those ``keys`` that have one (buffered puts included)."""
        wanted = list(dict.fromkeys(keys))

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            found: dict[str, Any] = {}
            for start in range(0, len(wanted), _QUERY_CHUNK):
                chunk = wanted[start : start + _QUERY_CHUNK]
                rows = conn.execute(
                    f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, value in rows:
                    found[key] = json.loads(value)
            return found

        with self._lock:
            found = self._guard("be read", read) or {}
            for key in wanted:
                if key in self._pending:
                    found[key] = json.loads(self._pending[key])
        return found

    def get(self, key: str) -> Any | None:
        """The stored value, or ``None``."""
        return self.get_many([key]).get(key)

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Remember values; committed once ``batch`` of them wait (or on ``flush``)."""
        encoded = {key: json.dumps(value, default=str) for key, value in items.items()}
        with self._lock:
            self._pending.update(encoded)
            if len(self._pending) >= self.batch:
                self._flush_locked()

    def put(self, key: str, value: Any) -> None:
        """Remember one value."""
        self.put_many({key: value})

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        now = time.time()
        rows = [(key, value, now) for key, value in self._pending.items()]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, at) VALUES (?, ?, ?)", rows
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self._guard("be written", write)
        self._pending.clear()

    def flush(self) -> None:
        """Commit what is buffered."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Commit what is buffered and close the connection."""
        with self._lock:
            self._flush_locked()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __len__(self) -> int:
        with self._lock:
            self._flush_locked()
            row = self._guard(
                "be read", lambda conn: conn.execute("SELECT COUNT(*) FROM entries").fetchone()
            )
        return int(row[0]) if row else 0

    def __getstate__(self) -> dict[str, Any]:
        # Crossing a process boundary (a task runner): commit first, reconnect on the far side.
        self.flush()
        return {"path": self.path, "name": self.name, "batch": self.batch}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["name"], batch=state["batch"])  # type: ignore[misc]
