"""Files the engine writes and reads: atomic writes, and JSON-lines rows checked line by line.

A file written through :func:`atomic_open` appears under its name complete or not at all: the
data goes to a temporary file beside the target (the same folder, so the same file system),
which is flushed to disk and then renamed over the target. A reader never sees half a file, a
crash leaves the previous version in place, and a failure removes the temporary file.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, overload

from pydantic import BaseModel, ValidationError

from evals.errors import Problem, UserError, display_path

__all__ = ["atomic_open", "read_jsonl_rows"]

_MAX_PROBLEMS = 20


@overload
def atomic_open(
    path: Path, mode: Literal["w"] = "w", *, encoding: str = "utf-8"
) -> AbstractContextManager[IO[str]]: ...


@overload
def atomic_open(path: Path, mode: Literal["wb"]) -> AbstractContextManager[IO[bytes]]: ...


def atomic_open(
    path: Path, mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8"
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

    Returns:
        A context manager that yields the open temporary file.
    """
    return _atomic(path, mode, None if mode == "wb" else encoding)


@contextmanager
def _atomic(path: Path, mode: str, encoding: str | None) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # "x": never write into a file someone else created under the same name.
        with temporary.open(mode.replace("w", "x"), encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


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
        UserError: the path is not a readable UTF-8 file, a line is not a JSON object or fails
            ``row_model`` (up to 20 problems, each naming its line), or there are no rows.
    """
    shown = display_path(path)
    if path.is_dir():
        raise UserError.single(shown, field, "is a folder; pass a JSONL file")
    if not path.is_file():
        raise UserError.single(shown, field, "file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is fine
    except UnicodeDecodeError as exc:
        raise UserError.single(
            shown, f"byte {exc.start}", "is not UTF-8 text; save the file as UTF-8"
        ) from exc
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                problems.append(
                    Problem(
                        shown,
                        f"line {line_no}",
                        f"is a JSON {type(data).__name__}; each line must be an object "
                        f"with {expected}",
                    )
                )
                continue
            row_model.model_validate(data)
        except json.JSONDecodeError as exc:
            problems.append(Problem(shown, f"line {line_no}", f"invalid JSON: {exc.msg}"))
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
