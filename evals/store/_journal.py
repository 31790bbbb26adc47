"""The journal of a run in progress: every output appended the moment it exists.

A run writes ``<journal dir>/<run_id>.jsonl``: a header line (a :class:`RunHeader`), then one
line per output (already redacted). Each line is flushed to the operating system as it is
written, so a killed process loses at most the calls in flight. ``impactgate run --resume
RUN_ID`` reads the journal back and calls only the cases it lacks; when the run commits its
Parquet files, the journal is deleted.

The journal lives beside the results (``<results>/journal/``) for a local results root, and
under the cache directory for a remote one (object stores cannot append).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from pathlib import Path
from typing import IO, Any

from evals._io import cache_dir
from evals.store._records import Output, RunHeader

__all__ = ["RunJournal", "journal_dir", "valid_run_id"]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
_SUFFIX = ".jsonl"


def valid_run_id(run_id: str) -> bool:
    """Whether ``run_id`` can name a journal file (no paths, no surprises)."""
    return bool(_RUN_ID.fullmatch(run_id)) and ".." not in run_id


def journal_dir(results: str | Path) -> Path:
    """Where runs in progress are journaled for a results root."""
    text = str(results)
    if "://" in text:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
        return cache_dir() / "journal" / safe
    return Path(text) / "journal"


class RunJournal:
    """Append-only record of one run's outputs; create with :meth:`start` or :meth:`open`."""

    def __init__(
        self, path: Path, header: RunHeader, outputs: dict[str, tuple[str, Output]]
    ) -> None:
        self.path = path
        self.header = header
        self._outputs = outputs
        self.resumed = len(outputs)
        """Outputs that were already journaled when this journal was opened."""
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    @classmethod
    def start(cls, folder: str | Path, header: RunHeader) -> RunJournal:
        """Begin the journal of a new run.

        Raises:
            FileExistsError: a journal for this run id exists already.
        """
        if not valid_run_id(header.run_id):
            raise ValueError(f"run id {header.run_id!r} cannot name a journal")
        path = Path(folder) / f"{header.run_id}{_SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        # A journal holds raw outputs until its run commits: readable by its owner only.
        with os.fdopen(
            os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w", encoding="utf-8"
        ) as handle:
            handle.write(json.dumps({"header": header.to_dict()}) + "\n")
        return cls(path, header, {})

    @classmethod
    def open(cls, folder: str | Path, run_id: str) -> RunJournal:
        """Read the journal of a run in progress.

        Raises:
            FileNotFoundError: no run with this id is in progress here.
        """
        if not valid_run_id(run_id):
            raise FileNotFoundError(run_id)
        path = Path(folder) / f"{run_id}{_SUFFIX}"
        header: RunHeader | None = None
        outputs: dict[str, tuple[str, Output]] = {}
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    # The process died mid-line: that output was never complete.
                    continue
                if "header" in entry:
                    header = RunHeader.from_dict(entry["header"])
                elif "output" in entry:
                    output = Output.from_record(entry["output"])
                    outputs[output.case_id] = (entry["case_hash"], output)
        if header is None:
            raise FileNotFoundError(f"{path} has no header line")
        return cls(path, header, outputs)

    @staticmethod
    def in_progress(folder: str | Path) -> list[RunHeader]:
        """Headers of every run journaled in ``folder``, oldest first."""
        headers = []
        for path in sorted(Path(folder).glob(f"*{_SUFFIX}")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                with path.open(encoding="utf-8") as handle:
                    first = json.loads(handle.readline())
                headers.append(RunHeader.from_dict(first["header"]))
        return headers

    def outputs(self) -> dict[str, tuple[str, Output]]:
        """Outputs journaled before this journal was opened, by case id, with their case's hash.

        These are what a resumed run reuses. Outputs recorded since are on disk only: a run
        never asks for them again, and a large run's journal is never held in memory (a later
        :meth:`open` reads them all).
        """
        with self._lock:
            return dict(self._outputs)

    def record(self, output: Output, case_hash: str) -> None:
        """Append one output; it survives the process from the moment this returns."""
        line = json.dumps({"case_hash": case_hash, "output": output.to_record()}, default=str)
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Stop appending (the journal stays, so the run can be resumed)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def discard(self) -> None:
        """Delete the journal once the run has committed."""
        self.close()
        self.path.unlink(missing_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "header": self.header, "outputs": self.outputs()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["header"], state["outputs"])  # type: ignore[misc]
