"""Drift: the same metric on production and on the golden set, with an interval for the gap.

"Golden says 0.95 faithful, production says 0.78" is a difference of two independent
estimates, each with its own interval (Wilson for rates, bootstrap for means). The interval
for the difference combines them with the MOVER method (method of variance estimates
recovery; Newcombe's hybrid score interval when both are Wilson intervals): for
``d = p - g``, ``low = d - sqrt((p - p_low)^2 + (g_high - g)^2)`` and
``high = d + sqrt((p_high - p)^2 + (g - g_low)^2)``. The golden and production cases are
different questions, so there is no pairing; an interval that excludes 0 is a gap the data
shows at the runs' confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evals.metrics import METRICS
from evals.store import MetricRecord, RunRecord

__all__ = ["DriftRow", "drift"]

_QUALITY_KINDS = ("rate", "mean")


@dataclass(frozen=True)
class DriftRow:
    """One metric on both sources and the gap between them."""

    metric: str
    golden: float
    production: float
    difference: float
    """Production minus golden."""
    low: float | None
    high: float | None
    worse: bool
    """The interval excludes 0 on the metric's bad side."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the run record, the report)."""
        return {
            "metric": self.metric,
            "golden": self.golden,
            "production": self.production,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "worse": self.worse,
        }


def _row(name: str, golden: MetricRecord, production: MetricRecord) -> DriftRow | None:
    g, p = golden.value, production.value
    if g is None or p is None:
        return None
    difference = p - g
    low = high = None
    g_low, g_high, p_low, p_high = golden.low, golden.high, production.low, production.high
    if g_low is not None and g_high is not None and p_low is not None and p_high is not None:
        low = difference - math.hypot(p - p_low, g_high - g)
        high = difference + math.hypot(p_high - p, g - g_low)
    better = METRICS[name].better
    worse = (high is not None and high < 0) if better == "higher" else (low is not None and low > 0)
    return DriftRow(name, g, p, difference, low, high, worse)


def drift(golden: RunRecord, production: Mapping[str, MetricRecord]) -> list[DriftRow]:
    """Each quality metric both runs measured, golden against production, in registry order.

    Quality metrics are the rates and means of a suite (not cost or latency).
    """
    rows = []
    for name, spec in METRICS.items():
        if spec.kind not in _QUALITY_KINDS or spec.suite in (None, "cost", "latency"):
            continue
        g, p = golden.metrics.get(name), production.get(name)
        if g is None or p is None or not g.measured or not p.measured:
            continue
        row = _row(name, g, p)
        if row is not None:
            rows.append(row)
    return rows
