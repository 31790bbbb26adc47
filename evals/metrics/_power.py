"""How many golden cases a gate needs before it can pass.

For a gate ``{max: t}`` on a rate whose true value is ``t − margin`` (mirror for ``min`` and for
means), the smallest number of cases at which the interval the gate uses clears ``t`` when the
estimate lands on the true value. Fewer cases leave the gate inconclusive however good the
agent is; that is the number ``impactgate plan`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from evals.metrics._registry import MetricSpec
from evals.metrics._stats import _z, binomial_cdf, wilson_interval

__all__ = ["SampleSizePlan", "required_samples"]

_MAX_N = 1_000_000


@dataclass(frozen=True)
class SampleSizePlan:
    """The answer for one gate."""

    metric: str
    threshold: float
    direction: str
    margin: float
    confidence: float
    n: int | None
    """Cases needed; ``None`` when no number of cases can show it (the margin puts the true
    value outside the metric's range)."""
    assumption: str
    """What the number assumes, in words."""


def _smallest(ok: Callable[[int], bool], start: int = 1) -> int | None:
    """Smallest n ≥ start with ok(n), by doubling then bisection (ok is monotone in n)."""
    n = start
    while n <= _MAX_N and not ok(n):
        n *= 2
    if n > _MAX_N:
        return None
    low, high = max(start, n // 2), n
    while low < high:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid + 1
    return low


def required_samples(
    spec: MetricSpec,
    threshold: float,
    direction: str,
    margin: float,
    confidence: float = 0.95,
    sd: float | None = None,
) -> SampleSizePlan:
    """Cases a gate needs to pass when the truth is ``margin`` better than its threshold.

    Args:
        spec: the metric.
        threshold: the gate's bound.
        direction: ``min`` or ``max``.
        margin: how much better than the threshold the agent truly is (metric units).
        confidence: the contract's confidence.
        sd: per-case standard deviation for means; defaults to the largest a [0, 1] score can
            have (0.5), or must be given for unbounded metrics.
    """
    truth = threshold + margin if direction == "min" else threshold - margin
    z = _z(confidence)

    def plan(n: int | None, assumption: str) -> SampleSizePlan:
        return SampleSizePlan(spec.name, threshold, direction, margin, confidence, n, assumption)

    if spec.kind in ("rate", "count_rate"):
        if not 0.0 <= truth <= 1.0:
            return plan(None, f"a true rate of {truth:g} is impossible")

        def clears(n: int) -> bool:
            events = round(truth * n)
            low, high = wilson_interval(events, n, confidence)
            return high <= threshold if direction == "max" else low >= threshold

        return plan(_smallest(clears), f"true rate {truth:g}, Wilson interval at {confidence:.0%}")
    if spec.kind == "quantile":
        assert spec.quantile is not None
        q, tail = spec.quantile, (1 - confidence) / 2

        def bounded(n: int) -> bool:
            return (
                binomial_cdf(n - 1, n, q) >= 1 - tail
                if direction == "max"
                else binomial_cdf(0, n, q) <= tail
            )

        side = "upper" if direction == "max" else "lower"
        return plan(
            _smallest(bounded),
            f"cases before the p{round(q * 100)} has a finite {side} bound at {confidence:.0%} "
            "(how far inside the threshold it lands depends on the latency distribution)",
        )
    if spec.unit == "share" and not 0.0 <= truth <= 1.0:
        return plan(None, f"a true {spec.name} of {truth:g} is impossible")
    spread = sd if sd is not None else (0.5 if spec.unit == "share" else None)
    if spread is None:
        return plan(None, f"give the per-case standard deviation of {spec.name} (--sd)")
    n = max(2, math.ceil((z * spread / margin) ** 2))
    return plan(
        n,
        f"true mean {truth:g}, per-case standard deviation {spread:g}, normal approximation of the bootstrap",
    )
