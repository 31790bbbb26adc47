"""Golden datasets: loading, hashing, and the checks every dataset must pass."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.dataset._case import Case, RecordedOutput
from evals.dataset._rows import iter_models, read_models
from evals.errors import Problem, UserError, display_path

__all__ = [
    "BATCH",
    "KEEP_IN_MEMORY",
    "Dataset",
    "Recordings",
    "file_hash",
    "load_dataset",
    "load_recordings",
]


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the dataset version)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


KEEP_IN_MEMORY = 5_000
"""A dataset of up to this many cases is held in memory once loaded; a larger one is read
again, in batches, whenever a run walks it, so a run's memory does not grow with its size."""

BATCH = 1_000
"""Cases per batch when a run walks a dataset (:meth:`Dataset.batches`)."""


class Dataset:
    """A golden dataset, validated whole when it was loaded.

    Small datasets (:data:`KEEP_IN_MEMORY`) keep their cases; a larger one keeps only its
    path, size and hash, and :meth:`batches` reads it again as a run walks it. ``cases``
    always works, by reading the whole file when it was not kept: runs walk batches instead.
    """

    def __init__(
        self,
        path: Path,
        cases: Sequence[Case] | None,
        content_hash: str,
        size: int | None = None,
    ) -> None:
        self.path = path
        self.content_hash = content_hash
        """SHA-256 of the file: the dataset version a run is recorded against."""
        self._cases = tuple(cases) if cases is not None else None
        if self._cases is None and size is None:
            raise ValueError("a dataset without its cases needs its size")
        self._size = len(self._cases) if self._cases is not None else int(size or 0)
        self._stamp = _stamp(path) if self._cases is None else None

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, {self._size} cases)"

    @property
    def in_memory(self) -> bool:
        """Whether the cases are held (else every walk reads the file again)."""
        return self._cases is not None

    @property
    def cases(self) -> tuple[Case, ...]:
        """Every case, in file order (read whole, and kept, for a dataset that was not)."""
        if self._cases is None:
            self._cases = tuple(case for batch in self.batches() for case in batch)
        return self._cases

    @property
    def ids(self) -> list[str]:
        """Case ids in file order."""
        return [case.id for batch in self.batches() for case in batch]

    def batches(self, size: int = BATCH) -> Iterator[list[Case]]:
        """The cases in file order, ``size`` at a time.

        Raises:
            UserError: the file changed since it was loaded (the run would not measure the
                dataset version it records).
        """
        if self._cases is not None:
            for start in range(0, len(self._cases), size):
                yield list(self._cases[start : start + size])
            return
        self._unchanged()
        batch: list[Case] = []
        count = 0
        for _, case in iter_models(self.path, Case):
            batch.append(case)
            count += 1
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch
        self._unchanged(count)

    def _unchanged(self, count: int | None = None) -> None:
        if _stamp(self.path) != self._stamp or (count is not None and count != self._size):
            raise UserError.single(
                display_path(self.path),
                "",
                "the dataset changed while a run was reading it; run again on a file that "
                "stays put (write a new dataset version to a new file, then point the "
                "contract at it)",
            )


def _stamp(path: Path) -> tuple[int, int]:
    """What tells that a file changed: its size and modification time."""
    info = path.stat()
    return info.st_size, info.st_mtime_ns


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
    kept: list[Case] | None = []
    first: dict[str, str] = {}
    problems: list[Problem] = []
    size = 0
    for where, case in iter_models(path, Case):
        size += 1
        if case.id in first:
            where_first = first[case.id]
            problems.append(
                Problem(
                    shown, f"{where}: column 'id'", f"duplicate {case.id!r}, first at {where_first}"
                )
            )
        else:
            first[case.id] = where
        if kept is not None:
            kept.append(case)
            if len(kept) > KEEP_IN_MEMORY:
                kept = None  # read again in batches by each run
    if problems:
        raise UserError(problems)
    if not size:
        raise UserError.single(shown, "", "the dataset has no cases; add at least one row")
    return Dataset(path, kept, file_hash(path), size)


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
