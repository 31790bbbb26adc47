"""The output cache: what an agent version answered to a case, reusable by any later run.

Keyed by (version hash, case id, case fingerprint): the same version on the same case content
is the same call, so a rerun, or a new run after a crash, pays nothing twice. Values are the
outputs as recorded (already redacted) with their original latency, usage and cost; a hit
comes back marked ``cached``. Errors are never cached: a later run tries them again.

This is not the model request cache of ``evals.llm`` (which the judges use): that one keys on
the exact request and answers in zero seconds, which would make agent latency meaningless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from evals._io import KeyValueFile, cache_dir
from evals.store._records import Output

__all__ = ["OutputCache"]

_FLUSH_EVERY = 64
"""Writes are batched: one transaction per this many outputs. A crash loses at most these,
and the run journal still has them for ``--resume``."""


def _key(version: str, case_id: str, case_hash: str) -> str:
    return f"{version}\x1f{case_id}\x1f{case_hash}"


class OutputCache:
    """Outputs by version and case; safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = KeyValueFile(self.path, "the output cache", batch=_FLUSH_EVERY)

    @classmethod
    def default(cls) -> OutputCache:
        """The cache under ``$IMPACTGATE_CACHE_DIR`` (or ``~/.cache/impactgate``)."""
        return cls(cache_dir() / "outputs.sqlite")

    def get_many(self, version: str, keys: Sequence[tuple[str, str]]) -> dict[str, Output]:
        """Cached outputs of ``version`` for ``(case_id, case_hash)`` keys, by case id."""
        wanted = {_key(version, case_id, case_hash): case_id for case_id, case_hash in keys}
        found = self._file.get_many(list(wanted))
        return {
            wanted[key]: replace(Output.from_record(record), cached=True)
            for key, record in found.items()
        }

    def put(self, version: str, case_hash: str, output: Output) -> None:
        """Remember a successful output (errors are not cached)."""
        if output.error is not None or output.text is None:
            return
        record = output.to_record()
        record["cached"] = False
        self._file.put(_key(version, output.case_id, case_hash), record)

    def flush(self) -> None:
        """Write what is buffered."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the connection."""
        self._file.close()

    def __len__(self) -> int:
        return len(self._file)
