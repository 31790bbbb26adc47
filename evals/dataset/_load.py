"""Golden datasets: loading, hashing, and the checks every dataset must pass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from evals.dataset._case import Case, RecordedOutput
from evals.dataset._rows import read_models
from evals.errors import Problem, UserError, display_path

__all__ = ["Dataset", "Recordings", "file_hash", "load_dataset", "load_recordings"]


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the dataset version)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """A loaded golden dataset."""

    path: Path
    cases: tuple[Case, ...]
    content_hash: str
    """SHA-256 of the file: the dataset version a run is recorded against."""

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def ids(self) -> list[str]:
        """Case ids in file order."""
        return [case.id for case in self.cases]


def _duplicates(shown: str, wheres: list[tuple[str, str]], what: str) -> list[Problem]:
    first: dict[str, str] = {}
    problems = []
    for key, where in wheres:
        if key in first:
            problems.append(
                Problem(
                    shown, f"{where}: column '{what}'", f"duplicate {key!r}, first at {first[key]}"
                )
            )
        else:
            first[key] = where
    return problems


def load_dataset(path: str | Path) -> Dataset:
    """Load a golden dataset from JSONL, CSV or Parquet.

    Raises:
        UserError: missing file, unknown type, invalid rows, duplicate ids or no cases.
    """
    path = Path(path)
    shown = display_path(path)
    rows = read_models(path, Case)
    if not rows:
        raise UserError.single(shown, "", "the dataset has no cases; add at least one row")
    problems = _duplicates(shown, [(case.id, where) for where, case in rows], "id")
    if problems:
        raise UserError(problems)
    return Dataset(path, tuple(case for _, case in rows), file_hash(path))


@dataclass(frozen=True)
class Recordings:
    """Recorded outputs from a replay side file, by version then case id."""

    path: Path
    by_version: dict[str, dict[str, RecordedOutput]]
    content_hash: str

    @property
    def versions(self) -> list[str]:
        """Versions present in the file."""
        return sorted(self.by_version)


def load_recordings(path: str | Path, dataset: Dataset) -> Recordings:
    """Load a replay side file and check it against its dataset.

    Raises:
        UserError: invalid rows, a (case, version) recorded twice, or a case id the dataset
            does not have.
    """
    path = Path(path)
    shown = display_path(path)
    rows = read_models(path, RecordedOutput)
    if not rows:
        raise UserError.single(shown, "", "no recorded outputs; add rows or drop 'outputs'")
    problems = _duplicates(
        shown, [(f"{r.case_id}@{r.version}", where) for where, r in rows], "case_id"
    )
    known = set(dataset.ids)
    problems += [
        Problem(
            shown,
            f"{where}: column 'case_id'",
            f"'{r.case_id}' is not a case in {display_path(dataset.path)}",
        )
        for where, r in rows
        if r.case_id not in known
    ]
    problems += [
        Problem(shown, f"{where}: column 'output'", "empty output without an 'error' saying why")
        for where, r in rows
        if r.output is None and r.error is None
    ]
    if problems:
        raise UserError(problems[:20])
    by_version: dict[str, dict[str, RecordedOutput]] = {}
    for _, record in rows:
        by_version.setdefault(record.version, {})[record.case_id] = record
    return Recordings(path, by_version, file_hash(path))
