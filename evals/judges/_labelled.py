"""A grounding judge over labelled rows from a file, to benchmark a tier on your own data.

The engine behind ``impactgate judge grounding``, usable from a notebook::

    rows = read_grounding_rows(Path("rows.jsonl"))
    judged = list(judge_grounding_rows(build_judge(GroundingConfig()), rows))
    quality = GroundingRowsSummary.of(judged)
    print(quality.labelled.balanced_accuracy if quality.labelled else "no labels", quality.auc)

A row is a JSON object with ``context`` (a passage or a list of them), ``answer`` and optionally
``question``; every other field (an ``id``, a ``label`` with 1 = unsupported) is kept as given.

Calibrating on labelled rows (``impactgate judge grounding --calibrate``)::

    labelled = read_labelled_grounding_rows(Path("labelled.jsonl"))
    calibration = calibrate_on_rows(list(judge_grounding_rows(judge, labelled)))
    print(calibration.describe())
    records = [j.record(threshold=calibration.threshold) for j in judge_grounding_rows(judge, rows)]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from evals._io import read_jsonl_rows
from evals.errors import Problem, UserError
from evals.judges._base import GroundingJudge, GroundingVerdict
from evals.metrics import (
    Calibration,
    CalibrationError,
    Confusion,
    Objective,
    fit_calibration,
    roc_auc,
)

__all__ = [
    "GroundingRow",
    "GroundingRowsSummary",
    "JudgedRow",
    "LabelledGroundingRow",
    "calibrate_on_rows",
    "judge_grounding_rows",
    "read_grounding_rows",
    "read_labelled_grounding_rows",
]

_BATCH = 64


class GroundingRow(BaseModel):
    """The fields a grounding row needs; any others are allowed and kept."""

    model_config = ConfigDict(extra="allow")

    question: str = ""
    """The question the answer replies to (kept; the judges read only context and answer)."""
    context: str | list[str]
    """The passage, or the list of passages, the answer must be grounded in."""
    answer: str
    """The answer to judge."""


class LabelledGroundingRow(GroundingRow):
    """A grounding row with the owner's label: 1 = the answer is not supported, 0 = it is."""

    label: int
    """1 when the answer is unsupported by its context, 0 when it is supported."""

    @field_validator("label", mode="before")
    @classmethod
    def _zero_or_one(cls, value: object) -> int:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return int(value)
        raise ValueError(f"must be 0 or 1 (1 = unsupported), got {value!r}")


def read_grounding_rows(path: Path, *, field: str = "") -> list[dict[str, Any]]:
    """The rows of a JSON-lines file, each checked against :class:`GroundingRow`.

    Args:
        path: the file.
        field: how the caller names the file in a problem about the path (``--input``).

    Raises:
        UserError: the file is missing or unreadable, a line is not a valid row (each problem
            names its line), or there are no rows.
    """
    return read_jsonl_rows(path, GroundingRow, expected="question, context, answer", field=field)


def read_labelled_grounding_rows(path: Path, *, field: str = "") -> list[dict[str, Any]]:
    """Like :func:`read_grounding_rows`, and every row needs a ``label`` of 0 or 1.

    Raises:
        UserError: as :func:`read_grounding_rows`, and for a missing or invalid label.
    """
    return read_jsonl_rows(
        path,
        LabelledGroundingRow,
        expected="question, context, answer, label (1 = unsupported)",
        field=field,
    )


@dataclass(frozen=True)
class JudgedRow:
    """One row and the judge's verdict on its answer."""

    row: dict[str, Any]
    """The row as read, every field kept."""
    verdict: GroundingVerdict
    judge: str
    """The tier that judged it."""

    @property
    def label(self) -> int | None:
        """The row's label (1 = unsupported) when it has a 0/1 one, else ``None``."""
        label = self.row.get("label")
        return int(label) if label in (0, 1, True, False) else None

    def record(self, threshold: float | None = None) -> dict[str, Any]:
        """The output record: the row plus what the judge found.

        Adds ``score`` (support of the weakest claim), ``label_pred`` (1 when the answer is
        unsupported), ``claims`` and ``judge``; ``score`` and ``label_pred`` are ``None`` and
        ``error`` says why when judging failed.

        Args:
            threshold: a calibrated support threshold to read the verdict at (then also
                recorded as ``threshold``); default: the judge's own.
        """
        result = dict(self.row)
        verdict = self.verdict if threshold is None else self.verdict.at_threshold(threshold)
        if verdict.error:
            result.update(score=None, label_pred=None, claims=[], error=verdict.error)
        else:
            result.update(
                score=round(verdict.support_score, 6),
                label_pred=int(bool(verdict.unsupported)),
                claims=verdict.to_dict()["claims"],
            )
        if threshold is not None:
            result["threshold"] = threshold
        result["judge"] = self.judge
        return result

    def to_json(self, threshold: float | None = None) -> str:
        """:meth:`record` as one line of JSON, without the newline."""
        return json.dumps(self.record(threshold), default=str)


def judge_grounding_rows(
    judge: GroundingJudge,
    rows: Sequence[dict[str, Any]],
    *,
    batch_size: int = _BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[JudgedRow]:
    """Judge each row's answer against its context, in batches; results come in row order.

    Args:
        judge: the grounding judge (:func:`~evals.judges.build_judge`).
        rows: rows with ``context`` and ``answer`` (:func:`read_grounding_rows`).
        batch_size: rows handed to the judge at once.
        on_batch: called with the number of rows in each batch once they have all been
            yielded, e.g. to advance a progress display.
    """
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        items = [
            (
                str(r["answer"]),
                [r["context"]] if isinstance(r["context"], str) else list(r["context"]),
            )
            for r in batch
        ]
        for row, verdict in zip(batch, judge.judge(items), strict=True):
            yield JudgedRow(row, verdict, verdict.judge or judge.name)
        if on_batch is not None:
            on_batch(len(batch))


@dataclass(frozen=True)
class GroundingRowsSummary:
    """What a judge made of a set of rows, and how it agrees with their labels."""

    rows: int
    errors: int
    """Rows the judge could not judge; left out of the measures below."""
    unsupported: int
    """Rows judged unsupported."""
    labelled: Confusion | None
    """Judged unsupported against labelled 1, over rows with a 0/1 label; ``None`` without."""
    auc: float | None
    """ROC AUC of the unsupported score (1 − ``score``) for label 1; ``None`` unless both
    labels occur."""

    @classmethod
    def of(cls, judged: Sequence[JudgedRow]) -> GroundingRowsSummary:
        """Summarise judged rows (any order)."""
        scored = [j for j in judged if not j.verdict.error]
        labelled = [(label, j.verdict) for j in scored if (label := j.label) is not None]
        labels = [label for label, _ in labelled]
        return cls(
            rows=len(judged),
            errors=len(judged) - len(scored),
            unsupported=sum(1 for j in scored if j.verdict.unsupported),
            labelled=(
                Confusion.of(labels, [bool(v.unsupported) for _, v in labelled])
                if labelled
                else None
            ),
            auc=roc_auc(labels, [1.0 - v.support_score for _, v in labelled]),
        )


def calibrate_on_rows(
    judged: Sequence[JudgedRow],
    *,
    objective: Objective = "balanced",
    budget: float | None = None,
    labels_hash: str = "",
    judge_fingerprint: str = "",
    source: str = "labelled rows",
) -> Calibration:
    """Fit the judge's operating point on labelled, judged rows (``evals.metrics.fit_calibration``).

    Rows the judge could not judge are left out (the calibration's ``notes`` say how many).

    Args:
        judged: the labelled rows as the judge judged them.
        objective: ``balanced`` or ``false_alarm_budget``.
        budget: the false-alarm budget of ``false_alarm_budget``.
        labels_hash: what identifies the labels (a hash of the label file).
        judge_fingerprint: the judge (``evals.judges.judge_fingerprint``).
        source: how to name the labelled rows in a problem (the file, as the user gave it).

    Raises:
        UserError: a row has no 0/1 label, or the labels cannot calibrate (too few of a kind).
    """
    unlabelled = [i for i, j in enumerate(judged, start=1) if j.label is None]
    if unlabelled:
        shown = ", ".join(str(i) for i in unlabelled[:10])
        raise UserError.single(
            source, "label", f"rows {shown} have no 0/1 label (1 = unsupported); label every row"
        )
    scored = [j for j in judged if not j.verdict.error]
    try:
        calibration = fit_calibration(
            [j.verdict.support_score for j in scored],
            [j.label for j in scored if j.label is not None],
            objective=objective,
            budget=budget,
            labels_hash=labels_hash,
            judge_fingerprint=judge_fingerprint,
        )
    except CalibrationError as exc:
        raise UserError(Problem(source, "label", str(exc))) from None
    if skipped := len(judged) - len(scored):
        note = f"{skipped} labelled row(s) could not be judged and were left out of the fit."
        calibration = replace(calibration, notes=[*calibration.notes, note])
    return calibration
