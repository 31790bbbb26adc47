"""The owner's labels of a judge's verdicts: the ``labels`` table of the results store.

A label says whether one answer of one run really is unsupported (``grounding``) or really
breaks a policy (``policy``): 1 yes, 0 no. Labels are the contract owner's data: they are kept
per agent with who labelled them and when, written like every other table (one file per
import, renamed into place), and read back with the newest label of an item winning, so a
relabelling round supersedes the old one without rewriting anything. See docs/calibration.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa

__all__ = ["LABELS_SCHEMA", "LabelKind", "LabelRecord", "item_id", "labels_hash", "parse_item_id"]

LabelKind = Literal["grounding", "policy"]
LABEL_KINDS: tuple[LabelKind, ...] = ("grounding", "policy")

LABELS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("kind", pa.string()),
        ("run_id", pa.string()),
        ("case_id", pa.string()),
        ("version", pa.string()),
        ("question", pa.string()),
        ("contexts", pa.list_(pa.string())),
        ("answer", pa.string()),
        ("judge", pa.string()),
        ("judge_score", pa.float64()),
        ("judge_flag", pa.bool_()),
        ("label", pa.int64()),
        ("note", pa.string()),
        ("labelled_by", pa.string()),
        ("labelled_at", pa.timestamp("us", tz="UTC")),
        ("batch_id", pa.string()),
        ("source", pa.string()),
    ]
)


def item_id(kind: LabelKind, run_id: str, case_id: str) -> str:
    """The id of one labelled item: what was judged (kind), in which run, for which case."""
    return f"{kind}:{run_id}:{case_id}"


def parse_item_id(text: str) -> tuple[LabelKind, str, str] | None:
    """``(kind, run_id, case_id)`` of an item id, or ``None`` when it is not one."""
    kind, _, rest = text.partition(":")
    run_id, _, case_id = rest.partition(":")
    if kind not in LABEL_KINDS or not run_id or not case_id:
        return None
    return kind, run_id, case_id


@dataclass(frozen=True)
class LabelRecord:
    """One owner's label of one judged item (a row of the ``labels`` table)."""

    item_id: str
    agent: str
    kind: LabelKind
    run_id: str
    case_id: str
    version: str | None
    question: str
    contexts: tuple[str, ...]
    """The passages the answer was judged against (masked as the run stored its outputs)."""
    answer: str
    """The answer as the run stored it (masked)."""
    judge: str
    """The judge whose verdict was shown (``offline``, ``policy`` …)."""
    judge_score: float | None
    """Grounding: the answer's support score at export; policy: ``None``."""
    judge_flag: bool | None
    """Whether the judge flagged the item (unsupported, a violation) at export."""
    label: int
    """1: the owner says it is unsupported / a real violation; 0: it is fine."""
    note: str
    labelled_by: str
    labelled_at: datetime
    batch_id: str
    source: str
    """The label file as given to ``impactgate labels import``."""

    @property
    def date(self) -> str:
        """The partition day (UTC) of the import."""
        return self.labelled_at.astimezone(UTC).strftime("%Y-%m-%d")

    def same_label(self, other: LabelRecord) -> bool:
        """Whether two records say the same about the same item (an import changes nothing)."""
        return (self.item_id, self.label, self.note) == (other.item_id, other.label, other.note)

    def to_row(self) -> dict[str, Any]:
        """The ``labels`` row (``agent`` and ``date`` included)."""
        row = asdict(self)
        row["contexts"] = list(self.contexts)
        row["date"] = self.date
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LabelRecord:
        """Rebuild from a ``labels`` row."""
        data: dict[str, Any] = {k: row.get(k) for k in cls.__dataclass_fields__}
        data["contexts"] = tuple(row.get("contexts") or ())
        data["note"] = row.get("note") or ""
        data["question"] = row.get("question") or ""
        data["answer"] = row.get("answer") or ""
        data["label"] = int(row["label"])
        return cls(**data)


def labels_hash(labels: list[LabelRecord]) -> str:
    """A short hash of what a set of labels says (item, answer, contexts, label), in any order.

    Two calibrations with the same hash were fitted on the same labels.
    """
    digest = hashlib.sha256()
    for record in sorted(labels, key=lambda r: r.item_id):
        digest.update(
            json.dumps(
                [record.item_id, record.answer, list(record.contexts), record.label]
            ).encode()
        )
        digest.update(b"\n")
    return digest.hexdigest()[:16]
