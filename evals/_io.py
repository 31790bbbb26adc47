"""Small I/O pieces the engine shares, each once so each has one policy.

- :func:`cache_dir`: where caches live;
- :func:`atomic_open` / :func:`atomic_write_text`: a file appears under its name complete or
  not at all (written beside the target, synced, renamed; a failure removes the temporary
  file, and the previous version stays);
- :func:`read_jsonl_rows`: JSON-lines rows checked line by line, with line-numbered errors;
- :class:`KeyValueFile`: the one SQLite key/value store behind every cache; a cache is an
  optimisation that never fails a run (a broken or read-only cache warns once and is bypassed).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from evals.errors import Problem, UserError, display_path

__all__ = [
    "CACHE_ENV",
    "KeyValueFile",
    "atomic_open",
    "atomic_write_text",
    "cache_dir",
    "jsonl_lines",
    "not_utf8",
    "read_jsonl_rows",
]

CACHE_ENV = "IMPACTGATE_CACHE_DIR"
_MAX_PROBLEMS = 20


def cache_dir() -> Path:
    """Where caches live: ``$IMPACTGATE_CACHE_DIR``, else ``~/.cache/impactgate``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "impactgate")


@overload
def atomic_open(
    path: Path, mode: Literal["w"] = "w", *, encoding: str = "utf-8", replace: bool = True
) -> AbstractContextManager[IO[str]]: ...


@overload
def atomic_open(
    path: Path, mode: Literal["wb"], *, replace: bool = True
) -> AbstractContextManager[IO[bytes]]: ...


def atomic_open(
    path: Path, mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8", replace: bool = True
) -> AbstractContextManager[IO[str]] | AbstractContextManager[IO[bytes]]:
    """Open ``path`` for writing; the file appears under its name in one step, complete.

    Missing parent folders are created. Inside the ``with`` block the target is untouched;
    when the block ends normally the temporary file is flushed, synced to disk and renamed onto
    ``path``, replacing any previous file; when the block raises, the temporary file is removed
    and the exception propagates. The temporary file is named ``.<name>.<random>.tmp``, so
    concurrent writers never share one::

        with atomic_open(Path("out/scored.jsonl")) as out:
            for line in lines:
                out.write(line)

    Args:
        path: the file to create or replace.
        mode: ``"w"`` for text, ``"wb"`` for bytes.
        encoding: the text encoding (ignored for bytes).
        replace: ``False`` never replaces anything under ``path`` (a file, a folder, a symbolic
            link, also one that appears while the block runs): the finished file is linked
            into place only if the name is free.

    Returns:
        A context manager that yields the open temporary file.

    Raises:
        FileExistsError: ``replace`` is ``False`` and something has the name (nothing written).
    """
    return _atomic(path, mode, None if mode == "wb" else encoding, replace)


@contextmanager
def _atomic(path: Path, mode: str, encoding: str | None, replace: bool) -> Iterator[IO[Any]]:
    if not replace and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "already exists", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # "x": never write into a file someone else created under the same name.
        with temporary.open(mode.replace("w", "x"), encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            temporary.replace(path)
        else:
            _link_if_free(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _link_if_free(temporary: Path, path: Path) -> None:
    """Give ``temporary``'s file the name ``path`` unless something already has it."""
    try:
        os.link(
            temporary, path
        )  # fails with EEXIST whatever has the name: no check-then-write race
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: the narrow check-then-rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
        temporary.replace(path)


def atomic_write_text(path: str | Path, text: str | Iterable[str]) -> None:
    """Write ``text`` (a string, or chunks as they are produced) to ``path`` atomically."""
    with atomic_open(Path(path)) as handle:
        if isinstance(text, str):
            handle.write(text)
        else:
            for chunk in text:
                handle.write(chunk)


def not_utf8(raw: bytes, error: UnicodeDecodeError) -> tuple[int, str]:
    """Where ``raw`` stops being UTF-8 and what to say: ``(line, message)``, the line from 1."""
    line = raw[: error.start].count(b"\n") + 1
    column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
    return line, f"not UTF-8 text (byte {column} of the line); save the file as UTF-8"


def jsonl_lines(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | str]]:
    """Each non-blank line of a JSON-lines file: ``(row, line, object or what is wrong)``.

    Lines are decoded one by one, so a line that is not UTF-8 is reported with its number
    instead of failing the whole file; a UTF-8 byte-order mark on the first line is accepted.
    """
    with path.open("rb") as handle:
        row = 0
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                row += 1
                yield (
                    row,
                    line_no,
                    f"not UTF-8 text (byte {exc.start + 1} of the line); save the file as UTF-8",
                )
                continue
            if not line.strip():
                continue
            row += 1
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield row, line_no, f"invalid JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(value, dict):
                yield row, line_no, f"is a JSON {type(value).__name__}; each line must be an object"
                continue
            yield row, line_no, value


def read_jsonl_rows(
    path: Path, row_model: type[BaseModel], *, expected: str, field: str = ""
) -> list[dict[str, Any]]:
    """Read a JSON-lines file of objects, each checked against ``row_model``.

    Blank lines are skipped and a UTF-8 byte-order mark is accepted. Rows come back as the
    objects in the file, every field kept (``row_model`` only checks the fields it names, so
    it should allow extra ones).

    Args:
        path: the file.
        row_model: the fields each row must have, and their types.
        expected: the fields in words, for the messages (``"question, context, answer"``).
        field: how the caller names the file in a problem about the path itself, e.g. the
            command-line option ``--input``.

    Returns:
        The rows, in file order; at least one.

    Raises:
        UserError: the path is not a readable file, a line is not a UTF-8 JSON object or fails
            ``row_model`` (up to 20 problems, each naming its line), or there are no rows.
    """
    shown = display_path(path)
    if path.is_dir():
        raise UserError.single(shown, field, "is a folder; pass a JSONL file")
    if not path.is_file():
        raise UserError.single(shown, field, "file not found")
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for _, line_no, data in jsonl_lines(path):
        if isinstance(data, str):
            message = data if "object" not in data else f"{data} with {expected}"
            problems.append(Problem(shown, f"line {line_no}", message))
        else:
            try:
                row_model.model_validate(data)
            except ValidationError as exc:
                for error in exc.errors():
                    name = ".".join(str(p) for p in error["loc"])
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(
                        Problem(
                            shown,
                            f"line {line_no}: field '{name}'",
                            "required" if error["type"] == "missing" else message,
                        )
                    )
            else:
                rows.append(data)
        if len(problems) >= _MAX_PROBLEMS:
            break
    if problems:
        raise UserError(problems)
    if not rows:
        raise UserError.single(shown, "", f"no rows; expected JSON lines with {expected}")
    return rows


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
            # Caches keep what agents answered (masking happens when a run is stored): only
            # the user who ran them may read them.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
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
