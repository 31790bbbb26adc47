"""How well a judge agrees with the owner's labels: balanced accuracy and Cohen's κ, with intervals.

Label 1 is the event the judge looks for (an unsupported answer, a real violation) and a row
is *flagged* when the judge says so. A flag may also be a share in ``[0, 1]`` (how often a
row was flagged over repeated cross-validation): every measure below is linear in the flags.

The intervals come from a parametric bootstrap that keeps the number of labelled rows of each
class fixed (labels are usually chosen, not sampled: an export covers both sides of the
threshold) and draws each class's flag rate from its Jeffreys posterior,
``Beta(flagged + ½, not flagged + ½)``. Unlike resampling rows, this stays honest on small
and one-sided samples: ten rows all agreeing give an interval well below 1, not ``[1, 1]``.
The draws are seeded from the counts, so the same labels always give the same interval.
See docs/calibration.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evals.metrics._aggregate import MetricValue
from evals.metrics._power import _smallest

__all__ = ["Agreement", "Estimate", "judge_agreement", "labels_needed"]

RESAMPLES = 4000
"""Draws behind every interval."""


@dataclass(frozen=True)
class Estimate:
    """A number with its interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class Agreement:
    """A judge's flags against labels, with intervals; ``None`` where the labels cannot say.

    ``tp``/``fn`` count labelled-1 rows flagged / not flagged, ``fp``/``tn`` labelled-0 rows
    (sums of shares when flags are shares).
    """

    n: int
    positives: int
    """Rows labelled 1 (unsupported, a violation)."""
    negatives: int
    """Rows labelled 0."""
    tp: float
    fn: float
    fp: float
    tn: float
    accuracy: float | None
    """Share of rows where judge and label agree; ``None`` without rows."""
    balanced_accuracy: Estimate | None
    """Mean of the recall and the true-negative rate; ``None`` unless both classes occur."""
    kappa: Estimate | None
    """Cohen's κ: agreement beyond what the two marginals give by chance."""
    recall: Estimate | None
    """Share of labelled-1 rows flagged; ``None`` without any."""
    false_alarm_rate: Estimate | None
    """Share of labelled-0 rows flagged; ``None`` without any."""
    confidence: float
    reason: str
    """What the numbers say, or why one is missing, in words."""

    @property
    def defined(self) -> bool:
        """Whether balanced accuracy and κ could be measured."""
        return self.balanced_accuracy is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for storage."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Agreement:
        """The inverse of :meth:`to_dict`."""
        fields = dict(data)
        for name in ("balanced_accuracy", "kappa", "recall", "false_alarm_rate"):
            if fields.get(name) is not None:
                fields[name] = Estimate(**fields[name])
        return cls(**fields)

    def metric(self, name: str, note: str, n_errors: int = 0) -> MetricValue:
        """Balanced accuracy as the metric ``name``; ``note`` says what it measured.

        Without both classes among the labels there is no value, and the note is why.
        """
        estimate = self.balanced_accuracy
        if estimate is None:
            return MetricValue(
                name, None, None, None, self.n, n_errors, "bootstrap", self.confidence,
                self.reason,
            )  # fmt: skip
        return MetricValue(
            name,
            estimate.value,
            estimate.low,
            estimate.high,
            self.n,
            n_errors,
            "bootstrap",
            self.confidence,
            note,
        )

    def balanced_accuracy_draws(self) -> np.ndarray:
        """Simulated balanced accuracy: the draws behind its interval (to compare two)."""
        recall, false_alarm = _rate_draws(self.tp, self.fn, self.fp, self.tn)
        return np.asarray((recall + 1.0 - false_alarm) / 2.0, dtype=float)


def _rate_draws(tp: float, fn: float, fp: float, tn: float) -> tuple[np.ndarray, np.ndarray]:
    """Simulated recall and false-alarm rate, seeded from the counts."""
    digest = hashlib.sha256(np.asarray([tp, fn, fp, tn], dtype=np.float64).tobytes()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return rng.beta(tp + 0.5, fn + 0.5, RESAMPLES), rng.beta(fp + 0.5, tn + 0.5, RESAMPLES)


def _kappa(recall: Any, false_alarm: Any, positives: int, negatives: int) -> Any:
    """Cohen's κ of a judge with these class rates on a sample with these class counts."""
    n = positives + negatives
    share = positives / n
    flagged = share * recall + (1 - share) * false_alarm
    observed = share * recall + (1 - share) * (1 - false_alarm)
    chance = share * flagged + (1 - share) * (1 - flagged)
    return np.where(chance < 1.0, (observed - chance) / np.maximum(1.0 - chance, 1e-12), 0.0)


def _interval(draws: np.ndarray, value: float, confidence: float) -> Estimate:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    # The point estimate is always inside its interval (the posterior is not centred on it).
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def _checked(
    labels: Sequence[int | bool] | np.ndarray, flags: Sequence[float | bool] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).reshape(-1)
    f = np.asarray(flags, dtype=float).reshape(-1)
    if y.size != f.size:
        raise ValueError(f"{y.size} labels but {f.size} flags")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (1 = the event the judge looks for)")
    if ((f < 0) | (f > 1) | np.isnan(f)).any():
        raise ValueError("flags must be 0/1 or shares in [0, 1]")
    return y.astype(bool), f


def judge_agreement(
    labels: Sequence[int | bool] | np.ndarray,
    judge_flags: Sequence[float | bool] | np.ndarray,
    *,
    confidence: float = 0.95,
) -> Agreement:
    """Balanced accuracy and Cohen's κ of a judge's flags against labels, with intervals.

    Args:
        labels: 1 where the row has the event (unsupported, a violation), else 0.
        judge_flags: 1 where the judge flagged the row (or the share of times it did).
        confidence: two-sided coverage of the intervals.

    Returns:
        The agreement. With no rows, or rows of one class only, balanced accuracy and κ are
        ``None`` and ``reason`` says why (the rates of the class present are still given).

    Raises:
        ValueError: lengths differ, a label is not 0/1, or a flag is outside ``[0, 1]``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    y, f = _checked(labels, judge_flags)
    positives, negatives = int(y.sum()), int((~y).sum())
    tp, fp = float(f[y].sum()), float(f[~y].sum())
    fn, tn = positives - tp, negatives - fp
    n = positives + negatives
    recall_draws, false_alarm_draws = _rate_draws(tp, fn, fp, tn)
    recall = _interval(recall_draws, tp / positives, confidence) if positives else None
    false_alarm = _interval(false_alarm_draws, fp / negatives, confidence) if negatives else None
    balanced = kappa = None
    if n == 0:
        reason = "no labelled rows: nothing to measure agreement on"
    elif recall is None or false_alarm is None:
        present, missing = (
            ("unsupported or violating (1)", "fine (0)")
            if positives
            else ("fine (0)", "unsupported or violating (1)")
        )
        reason = (
            f"all {n} labels say {present}: agreement needs labelled rows of both kinds; "
            f"label some rows the owner judges {missing}"
        )
    else:
        balanced = _interval(
            (recall_draws + 1.0 - false_alarm_draws) / 2.0,
            (recall.value + 1.0 - false_alarm.value) / 2.0,
            confidence,
        )
        kappa = _interval(
            _kappa(recall_draws, false_alarm_draws, positives, negatives),
            float(_kappa(recall.value, false_alarm.value, positives, negatives)),
            confidence,
        )
        reason = (
            f"on {n} labelled rows ({positives} labelled 1, {negatives} labelled 0) the "
            f"judge's balanced accuracy is {balanced} and Cohen's κ {kappa}; it flags "
            f"{recall.value:.0%} of the rows labelled 1 and {false_alarm.value:.0%} of those "
            "labelled 0"
        )
    return Agreement(
        n=n,
        positives=positives,
        negatives=negatives,
        tp=tp,
        fn=fn,
        fp=fp,
        tn=tn,
        accuracy=(tp + tn) / n if n else None,
        balanced_accuracy=balanced,
        kappa=kappa,
        recall=recall,
        false_alarm_rate=false_alarm,
        confidence=confidence,
        reason=reason,
    )


def labels_needed(
    minimum: float, expected: float, *, confidence: float = 0.95, unsupported_share: float = 0.5
) -> int | None:
    """Labels before a judge that truly agrees at ``expected`` clears a ``{min: minimum}`` gate.

    The smallest number of labelled rows at which :func:`judge_agreement`'s interval for
    balanced accuracy lies above ``minimum`` when the sample shows exactly ``expected`` (each
    class's rate on target), as ``impactgate plan`` does for a metric's gate
    (``evals.metrics.required_samples``).

    Args:
        minimum: the gate on balanced accuracy.
        expected: the balanced accuracy the judge truly has.
        confidence: the interval's two-sided coverage.
        unsupported_share: share of the labels that are 1 (an export balances them).

    Returns:
        The number of labels; ``None`` when ``expected`` is not above ``minimum``.
    """
    if not 0.0 < unsupported_share < 1.0:
        raise ValueError("unsupported_share must be in (0, 1)")
    if expected <= minimum or not 0.0 <= expected <= 1.0:
        return None

    def clears(n: int) -> bool:
        positives = max(1, round(n * unsupported_share))
        negatives = max(1, n - positives)
        caught = round(expected * positives)
        quiet = round(expected * negatives)
        labels = [1] * positives + [0] * negatives
        flags = [1] * caught + [0] * (positives - caught) + [0] * quiet + [1] * (negatives - quiet)
        estimate = judge_agreement(labels, flags, confidence=confidence).balanced_accuracy
        return estimate is not None and estimate.low >= minimum

    return _smallest(clears, start=4)
