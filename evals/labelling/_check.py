"""A run's check of its grounding judge against the owner's labels, and its calibration.

Before a run scores anything, the judge it will use judges the labelled answers again (the
answer and passages each label was given on; a process asks the offline and NLI judges once
per configuration and labels, since they answer the same every time). With
``evals.grounding.calibration`` the support threshold is fitted on them
(``evals.metrics.fit_calibration``) and the run judges at it; ``judge_agreement`` is then the
*cross-validated* balanced accuracy (each label judged by a threshold fitted without it),
because agreement measured on the labels the threshold was fitted to flatters it. Without a
calibration, agreement is measured at the judge's own threshold. See docs/calibration.md.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.contract import Contract, GroundingConfig
from evals.errors import Problem, UserError, display_path
from evals.judges import GroundingVerdict, build_judge, judge_fingerprint
from evals.metrics import (
    Agreement,
    Calibration,
    CalibrationError,
    Estimate,
    MetricValue,
    fit_calibration,
    judge_agreement,
    labels_needed,
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
    refit: Agreement | None = None
    """Without a calibration: the cross-validated agreement a threshold fitted on these labels
    would reach (what ``evals.grounding.calibration`` would buy); ``None`` when calibrated or
    when the labels cannot fit one."""

    def explain(self, bound: float, level: str, verdict: str) -> str:
        """The agreement gate's reason, in words a product owner reads.

        What the judge did with the answers the owner labelled, how that compares with what
        ``level`` needs (``bound``), and what to do about it.

        Args:
            bound: the gate's ``min`` on balanced accuracy.
            level: the autonomy level the gate belongs to.
            verdict: the gate's verdict (``pass``, ``fail`` or ``inconclusive``).
        """
        agreement = self.agreement
        estimate = agreement.balanced_accuracy
        if estimate is None:
            return f"the labels cannot measure the grounding judge: {agreement.reason}"
        caught, flagged = round(agreement.tp), round(agreement.fp)
        fitted = " (its threshold fitted on your labels, each judged by a fit without it)"
        headline = {
            "pass": "the grounding judge agrees with your labels",
            "fail": "the grounding judge disagrees with your labels",
        }.get(
            verdict, "it is not yet clear that the grounding judge agrees with your labels enough"
        )
        what = (
            f"{headline}: of the {agreement.positives} answers you labelled unsupported it "
            f"catches {caught}, and of the {agreement.negatives} you labelled fine it flags "
            f"{flagged}. It agrees with you {_pct(estimate)}"
            f"{fitted if self.calibration is not None else ''}, counting both kinds of answer "
            f"equally; '{level}' needs {bound:.0%}"
        )
        if verdict == "pass":
            return f"{what}: its verdicts can be trusted at this level"
        if verdict != "fail":
            needed = labels_needed(bound, estimate.value, confidence=agreement.confidence)
            more = f"; about {needed} labels in all would decide it" if needed is not None else ""
            return (
                f"{what}, and {agreement.n} labels cannot yet tell whether it gets there"
                f"{more}: label more answers (impactgate labels export)"
            )
        fingerprint = str(self.provenance.get("judge_fingerprint", ""))
        reads_meaning = fingerprint.startswith(("llm:", "ragas:", "nli:"))
        advice = (
            "use a judge that checks meaning, not only wording (evals.grounding.judge: llm), "
            "and check it on the same labels."
            if not reads_meaning
            else "look at the answers it gets wrong, then change the judge's model or prompt "
            "(or a label that was wrong) and check it again on the same labels."
        )
        if self.refit is not None and self.refit.balanced_accuracy is not None:
            refit = self.refit.balanced_accuracy
            if refit.low >= bound:
                advice = (
                    f"fitting its threshold on your labels reaches {_pct(refit)}: set "
                    "evals.grounding.calibration, or " + advice
                )
            else:
                advice = (
                    f"fitting its threshold on your labels does not fix it ({_pct(refit)}): "
                    "the answers it misses score like the ones it rightly passes. "
                    + advice[0].upper()
                    + advice[1:]
                )
        return f"{what}, so its verdicts cannot decide this level. {advice[0].upper()}{advice[1:]}"

    def metric(self) -> MetricValue:
        """``judge_agreement`` as a metric: balanced accuracy with its interval."""
        how = (
            "cross-validated on the labels the threshold was fitted to"
            if self.calibration is not None
            else "at the judge's own threshold"
        )
        agreement = self.agreement
        return agreement.metric(
            AGREEMENT,
            f"{how}: of the {agreement.positives} answers you labelled unsupported it "
            f"catches {round(agreement.tp)}, and of the {agreement.negatives} you "
            f"labelled fine it flags {round(agreement.fp)}; Cohen's κ {agreement.kappa} (labels "
            f"{self.provenance['labels_hash']})",
        )


def contract_labels(contract: Contract) -> list[LabelRecord] | None:
    """The labels of the label file the contract names, or ``None`` when it names none.

    ``evals.grounding.calibration.labels`` (fitted on) or ``evals.grounding.labels`` (measured
    at the judge's own threshold).
    """
    from evals.labelling._files import read_label_file, validate_rows

    named = _label_file(contract)
    if named is None:
        return None
    path = contract.resolve(named)
    records = validate_rows(
        read_label_file(path), path, by=f"contract file {named}", agent=contract.agent
    )
    return [r for r in records if r.kind == "grounding"]


def _label_file(contract: Contract) -> str | None:
    """The label file the contract names (``calibration.labels`` or ``labels``), if any."""
    grounding = contract.evals.grounding
    if grounding.calibration is not None and grounding.calibration.labels is not None:
        return grounding.calibration.labels
    return grounding.labels


_VERDICTS: OrderedDict[str, tuple[float | None, list[GroundingVerdict]]] = OrderedDict()
_VERDICTS_KEPT = 16
_VERDICTS_LOCK = threading.Lock()


def _verdicts(
    config: GroundingConfig, fingerprint: str, labels: Sequence[LabelRecord]
) -> tuple[float | None, list[GroundingVerdict]]:
    """The judge's own support threshold and its verdicts on the labelled answers.

    Every run of an agent checks its judge on the same labels (a golden and a production run,
    each agent of a nightly, each night of a long-lived worker): a deterministic judge (the
    offline and NLI tiers) gives the same verdicts for the same configuration, fingerprint
    and labels, so they are kept for the process's next check. LLM judges are asked again;
    their calls have a cache of their own (``evals.grounding.cache``).
    """
    items = [(r.answer, list(r.contexts)) for r in labels]
    if config.judge not in ("offline", "nli"):
        return _judged(config, items)
    key = hashlib.sha256(
        json.dumps([fingerprint, config.model_dump(mode="json"), items]).encode()
    ).hexdigest()
    with _VERDICTS_LOCK:
        kept = _VERDICTS.get(key)
        if kept is not None:
            _VERDICTS.move_to_end(key)
            return kept[0], list(kept[1])
    threshold, verdicts = _judged(config, items)
    with _VERDICTS_LOCK:
        _VERDICTS[key] = (threshold, list(verdicts))
        while len(_VERDICTS) > _VERDICTS_KEPT:
            _VERDICTS.popitem(last=False)
    return threshold, verdicts


def _judged(
    config: GroundingConfig, items: list[tuple[str, list[str]]]
) -> tuple[float | None, list[GroundingVerdict]]:
    judge = build_judge(config)
    return getattr(judge, "support_threshold", None), judge.judge(items)


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
    fingerprint = judge_fingerprint(config)
    own_threshold, verdicts = _verdicts(config, fingerprint, labels)
    scored = [(r, v) for r, v in zip(labels, verdicts, strict=True) if not v.error]
    support = [v.support_score for _, v in scored]
    truth = [r.label for r, _ in scored]
    digest = labels_hash(list(labels))
    notes: list[str] = []
    if len(scored) < len(labels):
        notes.append(f"{len(labels) - len(scored)} labelled answers could not be judged")
    wanted = config.calibration
    calibration = None
    refit: Agreement | None = None
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
        threshold = own_threshold
        flags = [bool(v.unsupported) for _, v in scored]
        agreement = judge_agreement(truth, flags, confidence=confidence)
        try:  # what fitting the threshold on these labels would buy, for the gate's advice
            refit = fit_calibration(
                support,
                truth,
                labels_hash=digest,
                judge_fingerprint=fingerprint,
                confidence=confidence,
            ).cross_validated
        except CalibrationError:
            refit = None
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
    return JudgeCheck(agreement, calibration, threshold, provenance, notes, refit)


def _pct(estimate: Estimate) -> str:
    return f"{estimate.value:.0%} [{estimate.low:.0%}, {estimate.high:.0%}]"


def label_source(contract: Contract) -> str:
    """Where a contract's labels come from, in words."""
    named = _label_file(contract)
    if named is not None:
        return display_path(contract.resolve(named))
    return "the results store's labels"
