"""A persistent cache of the injection classifier's decisions, keyed by a hash of each text.

A golden dataset's inputs and retrieved contexts are the same from one night to the next, and
a prompt or model change under CI gating does not change them either, so the classifier, by
far the slowest rule, would read the same texts every run. This cache keeps, per text, the
decision value and the span of the sentence that decided it, under SHA-256 of the weights'
fingerprint and the text: it stores no text, so it never becomes a copy of what it screened.

Writes are batched in one transaction per call. A cache that cannot be opened or written (a
read-only home, a full disk) is a warning, never a failed run: the classifier just computes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from evals._io import KeyValueFile, cache_dir

__all__ = ["Decision", "DecisionCache"]

Decision = tuple[float, tuple[int, int] | None]
"""A text's decision value and the span of the sentence that decided it (``None``: the whole)."""


def _key(fingerprint: str, text: str) -> str:
    return hashlib.sha256(f"{fingerprint}\x00{text}".encode()).hexdigest()


class DecisionCache:
    """Classifier decisions by hash of weights and text; safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = KeyValueFile(self.path, "the injection classifier's cache")

    @classmethod
    def default(cls) -> DecisionCache:
        """The cache under ``$IMPACTGATE_CACHE_DIR`` (or ``~/.cache/impactgate``)."""
        return cls(cache_dir() / "injection.sqlite")

    def get_many(self, fingerprint: str, texts: Sequence[str]) -> dict[str, Decision]:
        """The cached decisions of those ``texts`` that have one."""
        keys = {_key(fingerprint, t): t for t in dict.fromkeys(texts)}
        found: dict[str, Decision] = {}
        for key, (value, start, end) in self._file.get_many(list(keys)).items():
            found[keys[key]] = (float(value), None if start is None else (int(start), int(end)))
        return found

    def put_many(self, fingerprint: str, decisions: Mapping[str, Decision]) -> None:
        """Remember decisions (one transaction)."""
        self._file.put_many(
            {
                _key(fingerprint, text): [value, *(span if span else (None, None))]
                for text, (value, span) in decisions.items()
            }
        )
        self._file.flush()

    def __len__(self) -> int:
        return len(self._file)
