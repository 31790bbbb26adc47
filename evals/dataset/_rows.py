"""Reading JSONL, CSV and Parquet rows into validated models, with row- and column-level errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from evals._io import jsonl_lines
from evals.errors import Problem, UserError, did_you_mean, display_path

__all__ = ["SUPPORTED_SUFFIXES", "read_models"]

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".parquet")
_MAX_PROBLEMS = 20
_LIST_FIELDS = {"contexts", "tags"}
_JSON_FIELDS = {"usage", "metadata"}
_USAGE_COLUMNS = ("prompt_tokens", "completion_tokens")

M = TypeVar("M", bound=BaseModel)


def _jsonl(path: Path, shown: str) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    for row, line_no, value in jsonl_lines(path):
        where = f"row {row} (line {line_no})"
        yield where, Problem(shown, where, value) if isinstance(value, str) else value


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


def _csv(path: Path, shown: str) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row, record in enumerate(reader, start=1):
            where = f"row {row} (line {reader.line_num})"
            if None in record:
                yield where, Problem(shown, where, "more cells than header columns")
                continue
            parsed: dict[str, Any] = {}
            for column, cell in record.items():
                try:
                    value = _csv_cell(column, cell or "")
                except json.JSONDecodeError as exc:
                    yield (
                        where,
                        Problem(
                            shown, f"{where}: column '{column}'", f"invalid JSON in cell: {exc.msg}"
                        ),
                    )
                    break
                if value is not None:
                    parsed[column] = value
            else:
                yield where, parsed


def _parquet(path: Path, shown: str) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise UserError.single(shown, "", f"cannot read Parquet: {exc}") from None
    for row, record in enumerate(table.to_pylist(), start=1):
        yield f"row {row}", {k: v for k, v in record.items() if v is not None}


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
    rows: list[tuple[str, M]] = []
    try:
        for where, record in reader(path, shown):
            if isinstance(record, Problem):
                problems.append(record)
                continue
            try:
                rows.append((where, model.model_validate(_fold_usage(record))))
            except ValidationError as exc:
                for error in exc.errors():
                    column = ".".join(str(p) for p in error["loc"]) or "(row)"
                    if error["type"] == "missing":
                        message = "required column is missing or empty"
                    elif error["type"] == "extra_forbidden":
                        message = "unknown column" + did_you_mean(str(error["loc"][0]), known)
                    else:
                        message = f"{error['msg']} (got {error.get('input')!r:.60})"
                    problems.append(Problem(shown, f"{where}: column '{column}'", message))
            if len(problems) >= _MAX_PROBLEMS:
                break
    except UnicodeDecodeError as exc:
        raise UserError.single(shown, "", f"not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise UserError.single(shown, "", f"malformed CSV: {exc}") from None
    if problems:
        if len(problems) >= _MAX_PROBLEMS:
            problems.append(Problem(shown, "", "stopped after 20 problems; fix these first"))
        raise UserError(problems)
    return rows
