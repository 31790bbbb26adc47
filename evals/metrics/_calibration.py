"""A judge's operating point fitted on the owner's labels, its cross-validated agreement, and drift.

Scores are the judge's *support* for each answer (higher = better supported; the offline,
NLI and LLM judges' ``support_score``, the ``score`` of ``impactgate judge grounding``). Labels
are 1 for an unsupported answer (the event the judge looks for), 0 for a supported one. An
answer is flagged when its support is below the fitted threshold, so the threshold is a
``support_threshold`` a judge can use as it is.

Two objectives:

- ``balanced``: the threshold that maximises balanced accuracy on the labels (the middle of
  the best run of thresholds when several tie);
- ``false_alarm_budget``: the threshold that flags the most labelled-unsupported answers while
  flagging at most ``budget`` of the labelled-supported ones.

Fifty labels locate a threshold only roughly, so the fit is *bagged*: the objective is
maximised on many resamples of the labels (each class resampled on its own) and the fitted
threshold sits at the mean position of those thresholds among the candidates (thresholds
between consecutive distinct scores). That steadies the choice where the objective is flat,
and, being a position rather than a score, does not depend on the scale of the scores
(``benchmarks/calibration_quality.py --choose`` compares it with fitting once and with the
median threshold). The estimate of how well the fitted threshold will agree with new labels
is cross-validated: stratified K-fold, repeated with seeded shuffles, each fold fitted the
same way on the other folds and judged on its own rows. Everything is seeded from the
labels and the order of the scores: the same labels give the same calibration, and so do
the same scores in another scale.
See docs/calibration.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from evals.metrics._agreement import Agreement, Estimate, judge_agreement

__all__ = [
    "AgreementDrift",
    "Calibration",
    "CalibrationError",
    "Objective",
    "agreement_drift",
    "apply_calibration",
    "fit_calibration",
]

Objective = Literal["balanced", "false_alarm_budget"]

MIN_PER_CLASS = 2
"""Labelled rows of each class below which no threshold can be fitted and cross-validated."""
BAGS = 200
"""Resamples whose thresholds are pooled (their mean position) into one fit; 0 fits once."""
FOLDS = 5
REPEATS = 20


class CalibrationError(ValueError):
    """The labels cannot calibrate a judge; the message says why and what to label."""


@dataclass(frozen=True)
class Calibration:
    """An operating point fitted on labels, how well it agrees, and what it was fitted on."""

    threshold: float
    """Support threshold: an answer whose support score is below it is flagged."""
    objective: Objective
    budget: float | None
    """Most labelled-supported answers the ``false_alarm_budget`` objective may flag."""
    n: int
    positives: int
    """Labelled unsupported (1)."""
    negatives: int
    """Labelled supported (0)."""
    cross_validated: Agreement
    """Agreement of thresholds fitted without each row, on that row: what to expect."""
    fitted: Agreement
    """Agreement of this threshold on the very labels it was fitted on (optimistic)."""
    labels_hash: str
    judge_fingerprint: str
    """The judge the scores came from; another judge needs its own calibration."""
    folds: int
    repeats: int
    notes: list[str] = field(default_factory=list)
    """What limits the calibration, in words (few labels, a budget no threshold meets)."""

    @property
    def label_balance(self) -> float:
        """Share of labels that are 1 (unsupported)."""
        return self.positives / self.n

    def flags(self, support: Sequence[float] | np.ndarray) -> np.ndarray:
        """Flags (``True`` = unsupported) for support scores, at this threshold."""
        return np.asarray(support, dtype=float) < self.threshold

    def applies_to(self, judge_fingerprint: str) -> str | None:
        """``None`` when this calibration holds for that judge, else why not, in words."""
        if self.judge_fingerprint and judge_fingerprint != self.judge_fingerprint:
            return (
                f"the judge changed since it was calibrated ({self.judge_fingerprint} → "
                f"{judge_fingerprint}); its scores mean something else now: recalibrate on "
                "the labels"
            )
        return None

    def describe(self) -> str:
        """The fit and its cross-validated estimate in one paragraph."""
        cv = self.cross_validated
        goal = (
            "maximising balanced accuracy"
            if self.objective == "balanced"
            else f"flagging at most {self.budget:.0%} of supported answers"
        )
        text = (
            f"support threshold {self.threshold:.4f} ({goal}) fitted on {self.n} labels "
            f"({self.positives} unsupported, {self.negatives} supported); cross-validated "
            f"balanced accuracy {cv.balanced_accuracy}, recall {cv.recall}, false alarms "
            f"{cv.false_alarm_rate} at {cv.confidence:.0%}"
        )
        return " ".join([text + ".", *self.notes])

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for storage beside the runs that use it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """The inverse of :meth:`to_dict`."""
        fields = dict(data)
        fields["cross_validated"] = Agreement.from_dict(fields["cross_validated"])
        fields["fitted"] = Agreement.from_dict(fields["fitted"])
        return cls(**fields)


def apply_calibration(
    calibration: Calibration, support: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Flags (``True`` = unsupported) of support scores at a calibration's threshold."""
    return calibration.flags(support)


def _seed(*arrays: np.ndarray | float | str) -> int:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(
            array.encode() if isinstance(array, str) else np.asarray(array, np.float64).tobytes()
        )
    return int.from_bytes(digest.digest()[:8], "little")


def _candidates(values: np.ndarray) -> np.ndarray:
    """Thresholds between consecutive distinct scores, plus one flagging none and one all.

    Candidate ``k`` flags exactly the rows whose score is among the ``k`` lowest distinct ones.
    """
    unique = np.unique(values)
    top = unique[-1] + max(1e-6, 1e-6 * abs(unique[-1]))
    return np.concatenate([[unique[0]], (unique[:-1] + unique[1:]) / 2.0, [top]])


def _best_index(
    positive_weights: np.ndarray,
    negative_weights: np.ndarray,
    objective: Objective,
    budget: float | None,
) -> np.ndarray:
    """The best candidate's position per row of weights (rows: resamples; columns: scores).

    Weights count how often each distinct score occurs among the labelled-1 and labelled-0
    rows of a resample. Where several candidates tie for ``balanced``, the position is the
    middle of their run (a half-way position between two candidates when the run is even).
    """
    zero = np.zeros((positive_weights.shape[0], 1))
    caught = np.hstack([zero, np.cumsum(positive_weights, axis=1)])
    alarms = np.hstack([zero, np.cumsum(negative_weights, axis=1)])
    recall = caught / np.maximum(caught[:, -1:], 1e-12)
    false_alarm = alarms / np.maximum(alarms[:, -1:], 1e-12)
    if objective == "balanced":
        value = recall - false_alarm
        best = value.max(axis=1, keepdims=True)
        hits = value >= best - 1e-12
        first = hits.argmax(axis=1)
        last = hits.shape[1] - 1 - hits[:, ::-1].argmax(axis=1)
        return np.asarray((first + last) / 2.0)
    assert budget is not None
    within = false_alarm <= budget + 1e-12
    # false_alarm never falls as the threshold rises: the last candidate within budget
    # catches the most.
    return np.asarray(within.shape[1] - 1 - within[:, ::-1].argmax(axis=1), dtype=float)


def _fit_threshold(
    support: np.ndarray,
    labels: np.ndarray,
    objective: Objective,
    budget: float | None,
    bags: int,
    seed: int,
    pool: Literal["mean", "median"] = "mean",
) -> float:
    """The operating point on these rows (bagged over ``bags`` class-wise resamples).

    ``pool`` says how the resamples' thresholds become one: the threshold at their mean
    position among the candidates (the engine's choice), or their median threshold (kept
    for ``benchmarks/calibration_quality.py --choose``, which compares the two).
    """
    unique, position = np.unique(support, return_inverse=True)
    candidates = _candidates(support)
    columns = len(unique)
    positives, negatives = position[labels], position[~labels]
    if bags <= 0:
        pos = np.bincount(positives, minlength=columns)[None, :].astype(float)
        neg = np.bincount(negatives, minlength=columns)[None, :].astype(float)
        return _at(candidates, float(_best_index(pos, neg, objective, budget)[0]))
    rng = np.random.default_rng(seed)
    drawn_pos = positives[rng.integers(0, len(positives), (bags, len(positives)))]
    drawn_neg = negatives[rng.integers(0, len(negatives), (bags, len(negatives)))]
    pos = _counts(drawn_pos, columns)
    neg = _counts(drawn_neg, columns)
    best = _best_index(pos, neg, objective, budget)
    if pool == "median":
        return float(np.median([_at(candidates, b) for b in best]))
    return _at(candidates, float(best.mean()))


def _at(candidates: np.ndarray, position: float) -> float:
    """The threshold at a (possibly fractional) position among the candidates."""
    return float(np.interp(position, np.arange(len(candidates)), candidates))


def _counts(drawn: np.ndarray, columns: int) -> np.ndarray:
    """Per resample (row), how often each distinct score was drawn."""
    flat = (np.arange(drawn.shape[0])[:, None] * columns + drawn).ravel()
    return np.bincount(flat, minlength=drawn.shape[0] * columns).reshape(-1, columns).astype(float)


def _checked(
    support: Sequence[float] | np.ndarray, labels: Sequence[int | bool] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(support, dtype=float).reshape(-1)
    y = np.asarray(labels, dtype=float).reshape(-1)
    if s.size != y.size:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers (a row the judge could not score has none)")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (1 = unsupported)")
    return s, y.astype(bool)


def labels_digest(support: np.ndarray, labels: np.ndarray) -> str:
    """A hash of scores and labels, for a calibration given no labels hash."""
    digest = hashlib.sha256(np.asarray(labels, np.float64).tobytes())
    digest.update(np.asarray(support, np.float64).tobytes())
    return digest.hexdigest()[:16]


def fit_calibration(
    support: Sequence[float] | np.ndarray,
    labels: Sequence[int | bool] | np.ndarray,
    *,
    objective: Objective = "balanced",
    budget: float | None = None,
    labels_hash: str = "",
    judge_fingerprint: str = "",
    confidence: float = 0.95,
    folds: int = FOLDS,
    repeats: int = REPEATS,
    bags: int = BAGS,
) -> Calibration:
    """Fit a judge's operating point on labelled rows and estimate how well it agrees.

    Args:
        support: the judge's support score per row (higher = better supported).
        labels: 1 where the owner says the answer is unsupported, 0 where supported.
        objective: ``balanced`` or ``false_alarm_budget``.
        budget: with ``false_alarm_budget``: the largest share of supported answers that may
            be flagged, in ``[0, 1)``.
        labels_hash: what identifies the labels (a hash of the label file); default: a hash
            of the scores and labels given.
        judge_fingerprint: the judge the scores came from (provenance; see
            :meth:`Calibration.applies_to`).
        confidence: two-sided coverage of the intervals.
        folds: cross-validation folds (fewer when a class has fewer rows).
        repeats: cross-validation repeats, each with its own seeded shuffle.
        bags: resamples pooled into each fit (0: fit once on the rows as they are).

    Raises:
        CalibrationError: fewer than two labelled rows of a class (say which to label).
        ValueError: the inputs do not line up, or the objective's settings are invalid.
    """
    s, y = _checked(support, labels)
    # Sorted, so the same labels in another order give the same calibration.
    order = np.lexsort((y, s))
    s, y = s[order], y[order]
    if objective == "false_alarm_budget":
        if budget is None or not 0.0 <= budget < 1.0:
            raise ValueError("the false_alarm_budget objective needs a budget in [0, 1)")
    elif objective == "balanced":
        if budget is not None:
            raise ValueError("a budget applies to the false_alarm_budget objective only")
    else:
        raise ValueError(f"unknown objective {objective!r}; use balanced or false_alarm_budget")
    positives, negatives = int(y.sum()), int((~y).sum())
    if min(positives, negatives) < MIN_PER_CLASS:
        raise CalibrationError(
            f"{len(y)} labels, {positives} unsupported and {negatives} supported: a threshold "
            f"needs at least {MIN_PER_CLASS} labelled answers of each kind to be fitted and "
            "checked; label more answers "
            + ("the owner judges unsupported" if positives < MIN_PER_CLASS else "that are fine")
        )
    # Seeded from the scores' ranks, not their values: scores in another scale (any
    # increasing transform) resample the same rows and flag the same labelled answers.
    ranks = np.unique(s, return_inverse=True)[1]
    seed = _seed(ranks, y.astype(float), objective, budget if budget is not None else -1.0)
    threshold = _fit_threshold(s, y, objective, budget, bags, seed)
    k = min(folds, positives, negatives)
    rng = np.random.default_rng(seed)
    held_out = np.zeros(len(y))
    for _ in range(repeats):
        fold = np.empty(len(y), int)
        for members in (np.flatnonzero(y), np.flatnonzero(~y)):
            fold[rng.permutation(members)] = np.arange(len(members)) % k
        for f in range(k):
            train, test = fold != f, fold == f
            t = _fit_threshold(
                s[train], y[train], objective, budget, bags, int(rng.integers(2**63))
            )
            held_out[test] += s[test] < t
    cross = judge_agreement(y, held_out / repeats, confidence=confidence)
    fitted = judge_agreement(y, s < threshold, confidence=confidence)
    notes = _notes(cross, fitted, objective, budget, positives, negatives)
    return Calibration(
        threshold=threshold,
        objective=objective,
        budget=budget,
        n=len(y),
        positives=positives,
        negatives=negatives,
        cross_validated=cross,
        fitted=fitted,
        labels_hash=labels_hash or labels_digest(s, y),
        judge_fingerprint=judge_fingerprint,
        folds=k,
        repeats=repeats,
        notes=notes,
    )


def _notes(
    cross: Agreement,
    fitted: Agreement,
    objective: Objective,
    budget: float | None,
    positives: int,
    negatives: int,
) -> list[str]:
    notes = []
    assert cross.balanced_accuracy is not None
    width = cross.balanced_accuracy.high - cross.balanced_accuracy.low
    if width > 0.2:
        notes.append(
            f"With {positives} unsupported and {negatives} supported labels the estimate is "
            f"wide ({width:.2f} between its ends): label more answers to narrow it "
            "(docs/calibration.md says how many)."
        )
    if fitted.tp + fitted.fp == 0:
        notes.append(
            "The fitted threshold flags no labelled answer: "
            + (
                f"no threshold flags any unsupported answer within the {budget:.0%} budget."
                if objective == "false_alarm_budget"
                else "the judge's scores do not separate the labels."
            )
        )
    elif fitted.fn + fitted.tn == 0:
        notes.append(
            "The fitted threshold flags every labelled answer: the judge's scores do not "
            "separate the labels."
        )
    if objective == "false_alarm_budget" and cross.false_alarm_rate is not None:
        assert budget is not None
        if cross.false_alarm_rate.value > budget:
            notes.append(
                f"Cross-validated, it flags {cross.false_alarm_rate.value:.0%} of supported "
                f"answers, above the {budget:.0%} budget: with few supported labels a threshold "
                "fitted to the budget overshoots it on new answers about as often as not."
            )
    return notes


DriftStatus = Literal["holds", "unclear", "drifted", "stale", "unknown"]


@dataclass(frozen=True)
class AgreementDrift:
    """Whether a fresh round of labels still agrees with a calibrated judge."""

    status: DriftStatus
    """``holds``: within or above the calibrated interval; ``drifted``: below it, and worse
    beyond what the fresh labels' own noise explains; ``unclear``: below it, but too few fresh
    labels to tell; ``stale``: the judge changed since it was calibrated; ``unknown``: the fresh
    labels cannot measure agreement (one class only)."""
    fresh: Agreement | None
    calibrated: Estimate
    """The calibration's cross-validated balanced accuracy and interval."""
    reason: str
    """In words a product manager can act on."""

    @property
    def drifted(self) -> bool:
        """Whether the judge no longer agrees with the labels (an incident)."""
        return self.status == "drifted"


def agreement_drift(
    calibration: Calibration,
    support: Sequence[float] | np.ndarray,
    labels: Sequence[int | bool] | np.ndarray,
    *,
    judge_fingerprint: str | None = None,
) -> AgreementDrift:
    """Check a fresh round of labels against a calibration.

    The judge's support scores on the freshly labelled answers are flagged at the calibrated
    threshold. The judge has drifted when the fresh balanced accuracy falls below the
    calibration's interval *and* the two differ by more than their combined noise at the
    calibration's confidence (one-sided); below the interval but within that noise is
    ``unclear`` (label more).

    Args:
        calibration: the fitted calibration.
        support: the judge's support scores on the freshly labelled answers.
        labels: the fresh labels (1 = unsupported).
        judge_fingerprint: the judge that produced ``support``; a different judge than the
            calibrated one makes the check ``stale``.
    """
    calibrated = calibration.cross_validated.balanced_accuracy
    assert calibrated is not None  # a calibration always has both classes
    if judge_fingerprint is not None and (why := calibration.applies_to(judge_fingerprint)):
        return AgreementDrift("stale", None, calibrated, why[0].upper() + why[1:] + ".")
    s, y = _checked(support, labels)
    confidence = calibration.cross_validated.confidence
    fresh = judge_agreement(y, s < calibration.threshold, confidence=confidence)
    if fresh.balanced_accuracy is None:
        return AgreementDrift(
            "unknown", fresh, calibrated, f"The fresh labels cannot tell: {fresh.reason}."
        )
    now = fresh.balanced_accuracy
    said = (
        f"on {fresh.n} freshly labelled answers the judge's balanced accuracy is {now}; it was "
        f"calibrated at {calibrated} on {calibration.n} labels"
    )
    if now.value >= calibrated.low:
        return AgreementDrift(
            "holds", fresh, calibrated, f"The judge still agrees with you: {said}."
        )
    difference = calibration.cross_validated.balanced_accuracy_draws() - (
        fresh.balanced_accuracy_draws()
    )
    if float(np.quantile(difference, 1.0 - confidence)) > 0.0:
        return AgreementDrift(
            "drifted",
            fresh,
            calibrated,
            f"The judge no longer agrees with you: {said}. It misses "
            f"{1 - fresh.tp / fresh.positives:.0%} of the answers you call unsupported and "
            f"flags {fresh.fp / fresh.negatives:.0%} of those you call fine. Recalibrate it on "
            "the new labels, or use a stronger judge tier.",
        )
    return AgreementDrift(
        "unclear",
        fresh,
        calibrated,
        f"The judge may agree less than it did: {said}. That is below the calibrated range but "
        f"within what {fresh.n} labels can tell apart; label more answers to decide.",
    )
