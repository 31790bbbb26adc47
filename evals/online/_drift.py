"""Drift: the same metric on production and on the golden set, with an interval for the gap.

"Golden says 0.95 faithful, production says 0.78" is a difference of two independent
estimates, each with its own interval (Wilson for rates, bootstrap for means). The interval
for the difference combines them with the MOVER method (method of variance estimates
recovery; Newcombe's hybrid score interval when both are Wilson intervals): for
``d = p - g``, ``low = d - sqrt((p - p_low)^2 + (g_high - g)^2)`` and
``high = d + sqrt((p_high - p)^2 + (g - g_low)^2)``. The golden and production cases are
different questions, so there is no pairing; an interval that excludes 0 is a gap the data
shows at the runs' confidence.

A contract gates a gap as ``<metric>_drift`` (how far production falls short of golden, in the
metric's units; ``faithfulness_drift: {max: 0.05}``). Asked every night on a fresh sample, that
gate follows the monitoring rule of the other sampled production gates: it passes when tonight's
interval of the gap clears the bound, and fails only when the anytime-valid evidence over the
nights shows production beyond ``golden ∓ max`` (the golden run's measured value is the
reference: the golden set is fixed per version, so every night asks the same question, and a
new golden value starts a new series). Otherwise it is inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from evals.contract import Monitoring, Threshold
from evals.gates import GateResult, Verdict, judge_gate
from evals.metrics import DRIFT_METRICS, METRICS, MetricValue, fmt_interval, fmt_value
from evals.online._monitor import monitored_gates
from evals.store import MetricRecord, RunRecord

__all__ = ["DriftRow", "drift", "drift_gates"]

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
        if (
            spec.kind not in _QUALITY_KINDS
            or spec.suite in (None, "cost", "latency")
            or spec.scorer is None  # agreement with labels: the same labels on both sides
        ):
            continue
        g, p = golden.metrics.get(name), production.get(name)
        if g is None or p is None or not g.measured or not p.measured:
            continue
        row = _row(name, g, p)
        if row is not None:
            rows.append(row)
    return rows


def _reference(run: RunRecord, metric: str) -> float | None:
    """The golden value an earlier production run compared ``metric`` with, if it did."""
    rows = ((run.production or {}).get("drift") or {}).get("metrics") or []
    for row in rows:
        if row.get("metric") == metric:
            value = row.get("golden")
            return float(value) if isinstance(value, int | float) else None
    return None


def _missing(name: str, note: str, confidence: float) -> MetricValue:
    return MetricValue(name, None, None, None, 0, 0, "none", confidence, note)


def drift_gates(
    gates: Sequence[GateResult],
    golden: RunRecord | None,
    production: Mapping[str, MetricRecord],
    tonight: Mapping[str, Sequence[float]],
    earlier: Sequence[RunRecord],
    earlier_values: Mapping[str, Mapping[str, Sequence[float]]],
    config: Monitoring,
    *,
    min_samples: int,
    confidence: float,
) -> tuple[
    list[GateResult], dict[str, MetricValue], dict[str, dict[str, float | int | bool | None]]
]:
    """A production run's ``<metric>_drift`` gates judged against the golden run.

    Args:
        gates: the run's gates; those on drift metrics are replaced, the others kept.
        golden: the latest golden run of the same version (``None``: there is none).
        production: the production run's metrics.
        tonight: base metric → tonight's per-case values (for means).
        earlier: the earlier production runs of the monitoring period, oldest first.
        earlier_values: run id → base metric → that night's per-case values.
        config: the contract's monitoring settings.
        min_samples: fewest production cases before a drift gate can pass.
        confidence: the contract's confidence (for metrics that could not be measured).

    Returns:
        The gates, the drift metrics measured (to store with the run), and the monitoring
        evidence by drift metric.
    """
    rows = {row.metric: row for row in drift(golden, production)} if golden is not None else {}
    out: list[GateResult] = []
    measured: dict[str, MetricValue] = {}
    evidence: dict[str, dict[str, float | int | bool | None]] = {}
    for gate in gates:
        base = DRIFT_METRICS.get(gate.metric)
        if base is None:
            out.append(gate)
            continue
        name, row, bound = gate.metric, rows.get(base), gate.threshold.bound
        if golden is None or row is None:
            note = (
                "not measured: no golden run of this version to compare production with "
                "(the nightly runs the golden set first)"
                if golden is None
                else f"not measured: {base} was not measured by both the golden and the "
                "production run"
            )
            observed = _missing(name, note, confidence)
            verdict, reason = judge_gate(observed, gate.threshold, min_samples)
            out.append(replace(gate, observed=observed, verdict=verdict, reason=reason))
            measured[name] = observed
            continue
        higher = METRICS[base].better == "higher"
        low = None if row.high is None else (-row.high if higher else row.low)
        high = None if row.low is None else (-row.low if higher else row.high)
        base_record = production[base]
        observed = MetricValue(
            name,
            -row.difference if higher else row.difference,
            low,
            high,
            base_record.n,
            0,
            "mover",
            confidence,
        )
        measured[name] = observed
        verdict, reason = judge_gate(observed, gate.threshold, min_samples)
        shown = (
            f"production {base} {fmt_value(base, row.production)} vs golden "
            f"{fmt_value(base, row.golden)}: {fmt_value(name, observed.value)} worse "
            f"{fmt_interval(name, low, high)}"
        )
        # The same question on the base metric, with the golden value as a fixed reference.
        reference = (
            Threshold(min=row.golden - bound) if higher else Threshold(max=row.golden + bound)
        )
        as_base = GateResult(
            base,
            reference,
            MetricValue(
                base,
                row.production,
                base_record.low,
                base_record.high,
                base_record.n,
                base_record.n_errors,
                base_record.method or "none",
                base_record.confidence or confidence,
            ),
            verdict,
            reason,
        )
        same = [r for r in earlier if _reference(r, base) == row.golden]
        [monitored], found = monitored_gates([as_base], tonight, same, earlier_values, config)
        night = found.get(base)
        if night is not None:
            evidence[name] = night
        if night is not None and night["alarm"]:
            verdict, reason = Verdict.FAIL, f"{shown}; {monitored.reason}"
        elif night is not None and verdict == Verdict.FAIL:
            verdict, reason = Verdict.INCONCLUSIVE, f"{shown}; {monitored.reason}"
        elif verdict == Verdict.PASS:
            reason = f"{shown} clears {gate.threshold}"
        else:
            reason = f"production {base} {fmt_value(base, row.production)} vs golden " + (
                f"{fmt_value(base, row.golden)}: {reason}"
            )
        out.append(replace(gate, observed=observed, verdict=verdict, reason=reason))
    return out, measured, evidence
