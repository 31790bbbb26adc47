"""A run's check of its grounding judge against the owner's labels, and its calibration.

Before a run scores anything, the judge it will use judges the labelled answers again (the
answer and passages each label was given on). With ``evals.grounding.calibration`` the
support threshold is fitted on them (``evals.metrics.fit_calibration``) and the run judges
at it; ``judge_agreement`` is then the *cross-validated* balanced accuracy (each label judged
by a threshold fitted without it), because agreement measured on the labels the threshold was
fitted to flatters it. Without a calibration, agreement is measured at the judge's own
threshold. See docs/calibration.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.contract import Contract, GroundingConfig
from evals.errors import Problem, UserError, display_path
from evals.judges import build_judge, judge_fingerprint
from evals.metrics import (
    Agreement,
    Calibration,
    CalibrationError,
    MetricValue,
    fit_calibration,
    judge_agreement,
)
from evals.store import LabelRecord, labels_hash

__all__ = ["JudgeCheck", "check_judge", "contract_labels"]

AGREEMENT = "judge_agreement"


@dataclass(frozen=True)
class JudgeCheck:
    """How the grounding judge fares against the owner's labels, for one run."""

    agreement: Agreement
    calibration: Calibration | None
    threshold: float | None
    """The support threshold the run judges at (the fitted one when calibrated)."""
    provenance: dict[str, Any]
    """``labels_hash``, ``n``, ``judge_fingerprint``, ``threshold``, ``objective``,
    ``calibrated`` and ``source``: stored with the run."""
    notes: list[str] = field(default_factory=list)

    def metric(self) -> MetricValue:
        """``judge_agreement`` as a metric: balanced accuracy with its interval."""
        estimate = self.agreement.balanced_accuracy
        how = (
            "cross-validated on the labels the threshold was fitted to"
            if self.calibration is not None
            else "at the judge's own threshold"
        )
        if estimate is None:
            return MetricValue(
                AGREEMENT, None, None, None, self.agreement.n, 0, "bootstrap",
                self.agreement.confidence, self.agreement.reason,
            )  # fmt: skip
        kappa = self.agreement.kappa
        return MetricValue(
            AGREEMENT,
            estimate.value,
            estimate.low,
            estimate.high,
            self.agreement.n,
            0,
            "bootstrap",
            self.agreement.confidence,
            f"{how}; Cohen's κ {kappa}; {self.agreement.positives} labelled unsupported, "
            f"{self.agreement.negatives} supported (labels {self.provenance['labels_hash']})",
        )


def contract_labels(contract: Contract) -> list[LabelRecord] | None:
    """The labels of the label file the contract names, or ``None`` when it names none."""
    from evals.labelling._files import read_label_file, validate_rows

    calibration = contract.evals.grounding.calibration
    if calibration is None or calibration.labels is None:
        return None
    path = contract.resolve(calibration.labels)
    records = validate_rows(
        read_label_file(path), path, by=f"contract file {calibration.labels}", agent=contract.agent
    )
    return [r for r in records if r.kind == "grounding"]


def check_judge(
    config: GroundingConfig,
    labels: Sequence[LabelRecord],
    *,
    confidence: float,
    previous: dict[str, Any] | None = None,
    source: str = "labels",
) -> JudgeCheck:
    """Judge the labelled answers, fit the threshold if the contract asks, measure agreement.

    Args:
        config: the contract's grounding judge (a local model already resolved).
        labels: the owner's grounding labels.
        confidence: the contract's confidence (the intervals').
        previous: the provenance the agent's last calibrated run recorded; a different judge
            fingerprint is said in the notes (that calibration no longer applies).
        source: where the labels came from, for messages.

    Raises:
        UserError: the labels cannot calibrate the judge (too few of a kind).
    """
    judge = build_judge(config)
    fingerprint = judge_fingerprint(config)
    verdicts = judge.judge([(r.answer, list(r.contexts)) for r in labels])
    scored = [(r, v) for r, v in zip(labels, verdicts, strict=True) if not v.error]
    support = [v.support_score for _, v in scored]
    truth = [r.label for r, _ in scored]
    digest = labels_hash(list(labels))
    notes: list[str] = []
    if len(scored) < len(labels):
        notes.append(f"{len(labels) - len(scored)} labelled answers could not be judged")
    wanted = config.calibration
    calibration = None
    if wanted is not None:
        try:
            calibration = fit_calibration(
                support,
                truth,
                objective=wanted.objective,
                budget=wanted.budget,
                labels_hash=digest,
                judge_fingerprint=fingerprint,
                confidence=confidence,
            )
        except CalibrationError as exc:
            raise UserError(Problem(source, "label", str(exc))) from None
        threshold: float | None = calibration.threshold
        agreement = calibration.cross_validated
        notes += calibration.notes
    else:
        threshold = getattr(judge, "support_threshold", None)
        flags = [bool(v.unsupported) for _, v in scored]
        agreement = judge_agreement(truth, flags, confidence=confidence)
    if previous and previous.get("calibrated") and wanted is not None:
        before = previous.get("judge_fingerprint")
        if before and before != fingerprint:
            notes.append(
                f"the grounding judge changed since its last calibration ({before} → "
                f"{fingerprint}): that calibration no longer applies; refitted on the "
                f"{len(scored)} labels (threshold {previous.get('threshold')} → "
                f"{threshold:.4f})"
            )
        elif previous.get("labels_hash") not in (None, digest):
            notes.append(
                f"the labels changed since the last calibration ({previous.get('labels_hash')} "
                f"→ {digest}): refitted on {len(scored)} labels"
            )
    provenance = {
        "labels_hash": digest,
        "n": len(scored),
        "judge_fingerprint": fingerprint,
        "threshold": round(threshold, 6) if threshold is not None else None,
        "objective": wanted.objective if wanted is not None else None,
        "budget": wanted.budget if wanted is not None else None,
        "calibrated": calibration is not None,
        "source": source,
        "balanced_accuracy": (
            [
                agreement.balanced_accuracy.value,
                agreement.balanced_accuracy.low,
                agreement.balanced_accuracy.high,
            ]
            if agreement.balanced_accuracy is not None
            else None
        ),
    }
    if calibration is not None:
        provenance["fit"] = calibration.to_dict()  # what a later drift check compares with
    return JudgeCheck(agreement, calibration, threshold, provenance, notes)


def label_source(contract: Contract) -> str:
    """Where a contract's labels come from, in words."""
    calibration = contract.evals.grounding.calibration
    if calibration is not None and calibration.labels is not None:
        return display_path(contract.resolve(calibration.labels))
    return "the results store's labels"
