"""Paired comparison of two versions on the same golden cases.

The same cases are scored for a baseline and a candidate; each case contributes its own
difference, so case difficulty cancels out and a small golden set still has power. The delta
of every metric gets a paired bootstrap interval (cases resampled together; with repeated
judge calls, the repeats are resampled within each case too, so the judge's own noise widens
the interval instead of hiding in it). Rates also get McNemar's exact test on the discordant
cases.

A *regression* is a delta worse than the tolerance with the chosen confidence: the whole
interval lies beyond ``−tolerance`` on the bad side. An identical candidate is therefore called
a regression in at most (1 − confidence) / 2 of trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from evals.metrics._format import fmt_delta, fmt_interval
from evals.metrics._registry import MetricSpec
from evals.metrics._stats import _seed, binomial_sf

__all__ = ["Change", "PairedDelta", "compare_paired", "mcnemar_worse_p"]

CaseValues = Mapping[str, Sequence[float]]
"""Case id → the metric's value(s) for that case (several when a judge is repeated)."""


class Change(StrEnum):
    """What the comparison says about one metric."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no_change"
    """Neither a regression nor an improvement beyond the tolerance at this confidence."""
    INCONCLUSIVE = "inconclusive"
    """Too few paired cases to say."""


@dataclass(frozen=True)
class PairedDelta:
    """Candidate minus baseline for one metric, on the cases both versions have."""

    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    low: float | None
    high: float | None
    n: int
    """Cases scored on both sides."""
    confidence: float
    tolerance: float
    change: Change
    reason: str
    p_value: float | None = None
    """McNemar exact one-sided p-value that the candidate is worse (rates only)."""
    judge_sd: float | None = None
    """Pooled within-case standard deviation of repeated scores (judge noise), when repeated."""
    worse: list[str] = field(default_factory=list)
    """Cases that got worse, worst first."""
    better: list[str] = field(default_factory=list)


def mcnemar_worse_p(base_events: np.ndarray, candidate_events: np.ndarray) -> float:
    """One-sided exact p-value that the candidate has the event (a failure) more often.

    Only discordant cases count: ``b`` cases fail only for the candidate, ``c`` only for the
    baseline; under no change ``b ~ Binomial(b + c, 1/2)``.
    """
    b = int(np.sum(candidate_events & ~base_events))
    c = int(np.sum(base_events & ~candidate_events))
    if b + c == 0:
        return 1.0
    return binomial_sf(b - 1, b + c, 0.5)


def _statistic(spec: MetricSpec, values: np.ndarray) -> np.ndarray:
    """The metric over axis 1 (cases) for each bootstrap row."""
    if spec.kind == "rate":
        return np.asarray((values >= 0.5).mean(axis=1), dtype=float)
    if spec.kind == "quantile":
        assert spec.quantile is not None
        return np.asarray(np.quantile(values, spec.quantile, axis=1), dtype=float)
    return np.asarray(values.mean(axis=1), dtype=float)


def _resampled(rng: np.random.Generator, repeats: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Per bootstrap row and case: the mean of the case's repeats, resampled within the case."""
    sizes = {len(r) for r in repeats}
    if len(sizes) == 1:  # the usual case: every case judged k times; vectorised
        k = sizes.pop()
        table = np.stack(repeats)  # (cases, k)
        picks = rng.integers(0, k, size=(*rows.shape, k))
        return np.asarray(table[rows[..., None], picks].mean(axis=-1), dtype=float)
    out = np.empty(rows.shape)
    for j in range(rows.shape[1]):
        for i, case in enumerate(rows[:, j]):
            draws = repeats[case]
            out[i, j] = (
                draws[rng.integers(0, len(draws), len(draws))].mean()
                if len(draws) > 1
                else draws[0]
            )
    return out


def compare_paired(
    spec: MetricSpec,
    baseline: CaseValues,
    candidate: CaseValues,
    *,
    confidence: float = 0.95,
    tolerance: float = 0.0,
    min_samples: int = 1,
    resamples: int = 2000,
) -> PairedDelta:
    """Compare a metric between two versions, case by case.

    Args:
        spec: the metric (its kind decides the statistic, its direction what "worse" is).
        baseline: case id → value(s) for the baseline version.
        candidate: case id → value(s) for the candidate version.
        confidence: two-sided confidence of the delta's interval.
        tolerance: a change smaller than this (in the metric's unit) is not a regression.
        min_samples: fewer paired cases than this is inconclusive.
        resamples: bootstrap resamples.
    """
    ids = sorted(set(baseline) & set(candidate))
    n = len(ids)

    def result(**kwargs: Any) -> PairedDelta:
        return PairedDelta(
            metric=spec.name, n=n, confidence=confidence, tolerance=tolerance, **kwargs
        )

    if n == 0:
        return result(
            baseline=None, candidate=None, delta=None, low=None, high=None,
            change=Change.INCONCLUSIVE, reason="no case was scored on both sides",
        )  # fmt: skip
    base_reps = [np.asarray(baseline[i], dtype=float) for i in ids]
    cand_reps = [np.asarray(candidate[i], dtype=float) for i in ids]
    base = np.array([r.mean() for r in base_reps])
    cand = np.array([r.mean() for r in cand_reps])
    sign = 1.0 if spec.better == "higher" else -1.0
    base_stat = float(_statistic(spec, base[None, :])[0])
    cand_stat = float(_statistic(spec, cand[None, :])[0])
    delta = cand_stat - base_stat
    # Per-case change in the "good" direction: negative means this case got worse.
    if spec.kind == "rate":
        per_case = sign * ((cand >= 0.5).astype(float) - (base >= 0.5).astype(float))
    else:
        per_case = sign * (cand - base)
    order = np.argsort(per_case, kind="stable")
    worse = [ids[i] for i in order if per_case[i] < 0]
    better = [ids[i] for i in order[::-1] if per_case[i] > 0]
    repeated = any(len(r) > 1 for r in base_reps + cand_reps)
    judge_sd = None
    if repeated:
        within = [float(np.var(r, ddof=1)) for r in base_reps + cand_reps if len(r) > 1]
        judge_sd = float(np.sqrt(np.mean(within))) if within else None
    p_value = mcnemar_worse_p(base >= 0.5, cand >= 0.5) if spec.kind == "rate" else None
    if n < 2 or (np.all(base == cand) and not repeated):
        low = high = delta
    else:
        rng = np.random.default_rng(_seed(base, cand))
        rows = rng.integers(0, n, size=(resamples, n))
        if repeated:
            boot_base = _resampled(rng, base_reps, rows)
            boot_cand = _resampled(rng, cand_reps, rows)
        else:
            boot_base, boot_cand = base[rows], cand[rows]
        deltas = _statistic(spec, boot_cand) - _statistic(spec, boot_base)
        alpha = 1.0 - confidence
        low, high = (float(v) for v in np.quantile(deltas, [alpha / 2, 1 - alpha / 2]))
    good_low, good_high = sorted((sign * low, sign * high))
    shown = (
        f"Δ {fmt_delta(spec.name, delta)} {fmt_interval(spec.name, low, high, signed=True)} "
        f"on {n} paired cases"
    )
    if n < min_samples:
        change, reason = Change.INCONCLUSIVE, f"{shown}: fewer than the {min_samples} cases needed"
    elif good_high < -tolerance:
        change = Change.REGRESSION
        reason = f"{shown}: worse beyond the tolerance {tolerance:g} at {confidence:.0%} confidence"
    elif good_low > tolerance:
        change, reason = Change.IMPROVEMENT, f"{shown}: better beyond the tolerance {tolerance:g}"
    else:
        change, reason = Change.NO_CHANGE, f"{shown}: no change beyond the tolerance {tolerance:g}"
    if p_value is not None:
        reason += f"; McNemar p(worse) = {p_value:.3g}"
    return result(
        baseline=base_stat, candidate=cand_stat, delta=delta, low=low, high=high, change=change,
        reason=reason, p_value=p_value, judge_sd=judge_sd, worse=worse, better=better,
    )  # fmt: skip
