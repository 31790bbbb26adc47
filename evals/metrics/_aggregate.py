"""Per-case scores → one number with its uncertainty. Defined on empty input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evals.metrics._registry import MetricSpec
from evals.metrics._stats import bootstrap_mean_interval, quantile_interval, wilson_interval

__all__ = ["MetricValue", "aggregate"]


@dataclass(frozen=True)
class MetricValue:
    """A metric measured on one run: the estimate, its interval, and how much data it rests on."""

    name: str
    value: float | None
    """Point estimate; ``None`` when there was no data to estimate from."""
    low: float | None
    """Lower end of the interval; ``None`` when the data cannot bound it."""
    high: float | None
    """Upper end of the interval; ``None`` when the data cannot bound it."""
    n: int
    """Cases that contributed a value."""
    n_errors: int
    """Cases that could not be scored for this metric (they count against the error budget)."""
    method: str
    """``wilson``, ``bootstrap``, ``order-statistic`` or ``count`` (no interval: counted)."""
    confidence: float
    note: str = ""
    """Why the value or a side of the interval is missing, in words."""


def aggregate(spec: MetricSpec, values: Sequence[float | None], confidence: float) -> MetricValue:
    """Aggregate the per-case values of one metric.

    Args:
        spec: the metric.
        values: one entry per case; ``None`` for a case that could not be scored.
        confidence: two-sided confidence level of the interval.

    Returns:
        The metric with its interval. With no usable values, ``value`` is ``None`` and
        ``note`` says why; missing data never looks like a good number.
    """
    present = np.asarray([v for v in values if v is not None], dtype=np.float64)
    n, n_errors = int(present.size), len(values) - int(present.size)

    def result(
        value: float | None, low: float | None, high: float | None, method: str, note: str = ""
    ) -> MetricValue:
        return MetricValue(spec.name, value, low, high, n, n_errors, method, confidence, note)

    if spec.kind == "count_rate":
        if not values:
            return result(None, None, None, "count", "no cases were run")
        rate = float(present.sum()) / len(values)
        return result(rate, rate, rate, "count")
    if n == 0:
        why = (
            "no cases"
            if not values
            else f"none of the {n_errors} cases has a value (errored, or not measured)"
        )
        return result(None, None, None, _METHOD[spec.kind], f"no data: {why}")
    if spec.kind == "rate":
        events = int((present >= 0.5).sum())
        low, high = wilson_interval(events, n, confidence)
        return result(events / n, low, high, "wilson")
    if spec.kind == "mean":
        mean = float(present.mean())
        if n < 2:
            return result(mean, None, None, "bootstrap", "one value cannot give an interval")
        low, high = bootstrap_mean_interval(present, confidence)
        return result(mean, low, high, "bootstrap")
    assert spec.quantile is not None, spec
    point = float(np.quantile(present, spec.quantile))
    qlow, qhigh = quantile_interval(present, spec.quantile, confidence)
    note = ""
    if qlow is None or qhigh is None:
        side = "upper" if qhigh is None else "lower"
        note = (
            f"{n} values cannot bound the {side} side of the p{round(spec.quantile * 100)} "
            f"at {confidence:.0%} confidence"
        )
    return result(point, qlow, qhigh, "order-statistic", note)


_METHOD = {
    "rate": "wilson",
    "mean": "bootstrap",
    "quantile": "order-statistic",
    "count_rate": "count",
    "progress": "mapped",
}
