"""Reading JSONL, CSV and Parquet rows into validated models, with row- and column-level errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from evals._io import jsonl_lines
from evals.errors import Problem, UserError, did_you_mean, display_path

__all__ = ["SUPPORTED_SUFFIXES", "iter_models", "read_models"]

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".parquet")
_MAX_PROBLEMS = 20
_LIST_FIELDS = {"contexts", "tags"}
_JSON_FIELDS = {"usage", "metadata"}
_USAGE_COLUMNS = ("prompt_tokens", "completion_tokens")

M = TypeVar("M", bound=BaseModel)


def _next_line(path: Path, after: int) -> int:
    """The first non-blank line after line ``after`` (1-based)."""
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if line_no > after and raw.strip():
                return line_no
    return after + 1


def _jsonl(path: Path, shown: str) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    row, line_no = 0, 0
    try:
        for row, line_no, value in jsonl_lines(path):
            where = f"row {row} (line {line_no})"
            yield where, Problem(shown, where, value) if isinstance(value, str) else value
    except RecursionError:
        # json refuses nesting deeper than the interpreter's stack; the reader cannot go on.
        where = f"row {row + 1} (line {_next_line(path, line_no)})"
        yield where, Problem(shown, where, "nested too deeply to be a case; flatten the row")


def _csv_cell(column: str, cell: str) -> Any:
    text = cell.strip()
    if text == "":
        return None
    if column in _LIST_FIELDS:
        if text.startswith("["):
            return json.loads(text)
        return (
            [part.strip() for part in text.split(";") if part.strip()]
            if column == "tags"
            else [text]
        )
    if column in _JSON_FIELDS:
        return json.loads(text)
    return cell


class _NotUtf8(Exception):
    """A line of a text file that is not UTF-8."""

    def __init__(self, line: int, byte: int) -> None:
        super().__init__(f"line {line}")
        self.line, self.byte = line, byte


def _utf8_lines(handle: IO[bytes]) -> Iterator[str]:
    """The lines of a binary file decoded one by one, so bad bytes are found with their line."""
    for line_no, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise _NotUtf8(line_no, exc.start + 1) from None


def _csv(path: Path, shown: str) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    with path.open("rb") as handle:
        reader = csv.DictReader(_utf8_lines(handle), strict=True)
        row = 0
        try:
            header = reader.fieldnames or []
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                where = "header (line 1)"
                yield (
                    where,
                    Problem(
                        shown,
                        f"{where}: column '{repeated[0]}'",
                        "appears twice; only one of the columns would be read, so remove one",
                    ),
                )
                return
            for row, record in enumerate(reader, start=1):
                yield from _csv_record(shown, f"row {row} (line {reader.line_num})", record)
        except _NotUtf8 as exc:
            where = f"row {row + 1} (line {exc.line})" if exc.line > 1 else "header (line 1)"
            yield (
                where,
                Problem(
                    shown,
                    where,
                    f"not UTF-8 text (byte {exc.byte} of the line); save the file as UTF-8",
                ),
            )
        except csv.Error as exc:
            # The record that failed starts on the line after the last one read whole.
            where = f"row {row + 1} (line {reader.line_num + 1})"
            hint = (
                "; a quote opened in this row is never closed" if "end of data" in str(exc) else ""
            )
            yield where, Problem(shown, where, f"malformed CSV: {exc}{hint}")


def _csv_record(
    shown: str, where: str, record: dict[str | Any, Any]
) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    """One CSV record as a row, or the problem with it."""
    if None in record:
        yield where, Problem(shown, where, "more cells than header columns")
        return
    parsed: dict[str, Any] = {}
    for column, cell in record.items():
        try:
            value = _csv_cell(column, cell or "")
        except json.JSONDecodeError as exc:
            message = f"invalid JSON in cell: {exc.msg}"
        except RecursionError:
            message = "the JSON in the cell is nested too deeply"
        else:
            if value is not None:
                parsed[column] = value
            continue
        yield where, Problem(shown, f"{where}: column '{column}'", message)
        return
    yield where, parsed


def _parquet(path: Path, shown: str) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        row = 0
        for batch in batches:  # a row group at a time: a large file is never read whole
            for record in batch.to_pylist():
                row += 1
                yield f"row {row}", {k: v for k, v in record.items() if v is not None}
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise UserError.single(shown, "", f"cannot read Parquet: {exc}") from None


def _fold_usage(record: dict[str, Any]) -> dict[str, Any]:
    """Accept ``prompt_tokens``/``completion_tokens`` as flat columns as well as ``usage``."""
    if "usage" not in record and any(c in record for c in _USAGE_COLUMNS):
        record = dict(record)
        record["usage"] = {c: record.pop(c) for c in _USAGE_COLUMNS if c in record}
    return record


def read_models(path: Path, model: type[M]) -> list[tuple[str, M]]:
    """Read every row of a JSONL, CSV or Parquet file as ``model``.

    Returns:
        ``(where, instance)`` pairs, ``where`` naming the row for later messages.

    Raises:
        UserError: see :func:`iter_models`.
    """
    return list(iter_models(path, model))


def iter_models(path: Path, model: type[M]) -> Iterator[tuple[str, M]]:
    """The rows of a JSONL, CSV or Parquet file as ``model``, one at a time as they are read.

    Valid rows are yielded as they come, so a large file is never held whole; a caller that
    must not act on a file with bad rows reads it through once first (the error comes at the
    end of the file, or at the twentieth problem).

    Yields:
        ``(where, instance)`` pairs, ``where`` naming the row for later messages.

    Raises:
        UserError: the file is missing, of an unknown kind, or has invalid rows; every problem
            (up to 20) names the file, the row and the column.
    """
    shown = display_path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UserError.single(
            shown, "", f"unsupported file type '{suffix}'; use {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise UserError.single(shown, "", "file not found; check the path in the contract")
    reader = {".jsonl": _jsonl, ".csv": _csv, ".parquet": _parquet}[suffix]
    known = set(model.model_fields) | (
        set(_USAGE_COLUMNS) if "usage" in model.model_fields else set()
    )
    problems: list[Problem] = []
    try:
        for where, record in reader(path, shown):
            if isinstance(record, Problem):
                problems.append(record)
                continue
            try:
                valid = model.model_validate(_fold_usage(record))
            except ValidationError as exc:
                for error in exc.errors():
                    column = ".".join(str(p) for p in error["loc"]) or "(row)"
                    if error["type"] == "missing":
                        message = "required column is missing or empty"
                    elif error["type"] == "extra_forbidden":
                        message = "unknown column" + did_you_mean(str(error["loc"][0]), known)
                    else:
                        text = error["msg"].removeprefix("Value error, ")
                        message = f"{text} (got {error.get('input')!r:.60})"
                    problems.append(Problem(shown, f"{where}: column '{column}'", message))
            else:
                if not problems:
                    yield where, valid
            if len(problems) >= _MAX_PROBLEMS:
                break
    except OSError as exc:
        raise UserError.single(shown, "", f"cannot read the file: {exc.strerror or exc}") from None
    if problems:
        if len(problems) >= _MAX_PROBLEMS:
            problems.append(Problem(shown, "", "stopped after 20 problems; fix these first"))
        raise UserError(problems)
