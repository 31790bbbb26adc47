"""The closed set of metric names a contract can gate on.

Each metric belongs to a suite, aggregates the per-case scores of one scorer, and has a
direction. Contracts refer to metrics by these names; an unknown name is a config error with a
close-match suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DRIFT_METRICS",
    "METRICS",
    "PRODUCTION_METRICS",
    "SUITES",
    "TELEMETRY_METRICS",
    "MetricKind",
    "MetricSpec",
    "Suite",
    "metric_names",
]

Suite = Literal["grounding", "hallucination", "policy", "cost", "latency", "rag"]
SUITES: tuple[Suite, ...] = ("grounding", "hallucination", "policy", "cost", "latency", "rag")

MetricKind = Literal["rate", "mean", "quantile", "count_rate", "progress", "gap"]
"""How per-case scores become one number.

``rate``: share of cases whose score flags the event, a value of at least 0.5 (a 0/1 flag, or
a majority of a repeated judge) (Wilson interval); ``mean``: mean of the
values (bootstrap interval); ``quantile``: a percentile (distribution-free order-statistic
interval); ``count_rate``: a share counted in this run rather than estimated (no interval:
the error budget is spent by the errors that happened, not by a population estimate);
``progress``: an outcome's value placed on its path, 0 at the baseline and 1 at the target
(the outcome's own interval, mapped the same way); ``gap``: how far a production run falls
short of the golden run of the same version on a quality metric (``<metric>_drift``; the two
runs' intervals combined, see ``evals.online``).
"""


@dataclass(frozen=True)
class MetricSpec:
    """What a metric name means."""

    name: str
    suite: Suite | None
    """The suite that produces it; ``None`` for metrics every run has (``error_rate``)."""
    scorer: str | None
    """The scorer whose per-case values it aggregates (``None``: measured otherwise, e.g.
    ``judge_agreement`` against the owner's labels)."""
    kind: MetricKind
    better: Literal["higher", "lower"]
    unit: str
    description: str
    quantile: float | None = None
    source: Literal["run", "telemetry"] = "run"
    """``run``: aggregated from a run's per-case scores; ``telemetry``: measured by the
    scorecard from production telemetry over its window (``evals.scorecard``)."""
    block: Literal["evals", "workflow", "adoption", "outcome"] = "evals"
    """The contract block the metric belongs to."""


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "faithfulness",
            "grounding",
            "faithfulness",
            "mean",
            "higher",
            "share",
            "mean share of an answer's claims that its contexts support",
        ),
        MetricSpec(
            "hallucination_rate",
            "hallucination",
            "hallucination",
            "rate",
            "lower",
            "share",
            "share of answers with at least one claim the contexts do not support",
        ),
        MetricSpec(
            "policy_violation_rate",
            "policy",
            "policy_violation",
            "rate",
            "lower",
            "share",
            "share of outputs that break a policy rule",
        ),
        MetricSpec(
            "cost_per_case_usd",
            "cost",
            "cost",
            "mean",
            "lower",
            "USD",
            "mean cost of producing one answer",
        ),
        MetricSpec(
            "latency_p50_s",
            "latency",
            "latency",
            "quantile",
            "lower",
            "s",
            "median seconds per call",
            quantile=0.50,
        ),
        MetricSpec(
            "latency_p95_s",
            "latency",
            "latency",
            "quantile",
            "lower",
            "s",
            "95th percentile of seconds per call",
            quantile=0.95,
        ),
        MetricSpec(
            "latency_p99_s",
            "latency",
            "latency",
            "quantile",
            "lower",
            "s",
            "99th percentile of seconds per call",
            quantile=0.99,
        ),
        MetricSpec(
            "answer_relevance",
            "rag",
            "answer_relevance",
            "mean",
            "higher",
            "share",
            "semantic similarity of the answer to the question",
        ),
        MetricSpec(
            "answer_correctness",
            "rag",
            "answer_correctness",
            "mean",
            "higher",
            "share",
            "agreement of the answer with the reference: claim F1 (0.75) and similarity (0.25)",
        ),
        MetricSpec(
            "context_precision",
            "rag",
            "context_precision",
            "mean",
            "higher",
            "share",
            "average precision of the retrieved contexts that support the reference",
        ),
        MetricSpec(
            "context_recall",
            "rag",
            "context_recall",
            "mean",
            "higher",
            "share",
            "share of the reference's claims the retrieved contexts support",
        ),
        MetricSpec(
            "judge_agreement",
            "grounding",
            None,
            "mean",
            "higher",
            "share",
            "balanced accuracy of the grounding judge against the owner's labels "
            "(cross-validated when it is calibrated on them)",
        ),
        MetricSpec(
            "policy_agreement",
            "policy",
            None,
            "mean",
            "higher",
            "share",
            "balanced accuracy of the policy rule packs against the owner's labels of their "
            "findings (was it a real violation?)",
        ),
        MetricSpec(
            "golden_coverage",
            None,
            None,
            "rate",
            "higher",
            "share",
            "share of production inputs with a golden case at least the contract's "
            "coverage_threshold similar (production runs only)",
        ),
        MetricSpec(
            "error_rate",
            None,
            None,
            "count_rate",
            "lower",
            "share",
            "share of cases whose call or scoring ended in an error",
        ),
        # Measured from production telemetry over the scorecard's window (docs/scorecard.md).
        MetricSpec(
            "cycle_time_p50_h",
            None,
            None,
            "quantile",
            "lower",
            "h",
            "median hours from opening to closing, over the work items closed in the window",
            quantile=0.50,
            source="telemetry",
            block="workflow",
        ),
        MetricSpec(
            "cycle_time_p90_h",
            None,
            None,
            "quantile",
            "lower",
            "h",
            "90th percentile of hours from opening to closing, over work items closed",
            quantile=0.90,
            source="telemetry",
            block="workflow",
        ),
        MetricSpec(
            "automation_rate",
            None,
            None,
            "rate",
            "higher",
            "share",
            "share of closed work items resolved by the agent without a person",
            source="telemetry",
            block="workflow",
        ),
        MetricSpec(
            "escalation_rate",
            None,
            None,
            "rate",
            "lower",
            "share",
            "share of the work items the agent handled that were escalated to a person",
            source="telemetry",
            block="workflow",
        ),
        MetricSpec(
            "rework_rate",
            None,
            None,
            "rate",
            "lower",
            "share",
            "share of the agent's resolutions that were reopened or redone",
            source="telemetry",
            block="workflow",
        ),
        MetricSpec(
            "production_error_rate",
            None,
            None,
            "rate",
            "lower",
            "share",
            "share of the agent's production traces with a span in error",
            source="telemetry",
            block="workflow",
        ),
        MetricSpec(
            "adoption_rate",
            None,
            None,
            "rate",
            "higher",
            "share",
            "share of eligible work items handled by the agent",
            source="telemetry",
            block="adoption",
        ),
        MetricSpec(
            "business_outcome_progress",
            None,
            None,
            "progress",
            "higher",
            "progress",
            "progress of the business outcome(s) from baseline (0) to target (1); the least of two",
            source="telemetry",
            block="outcome",
        ),
        MetricSpec(
            "customer_outcome_progress",
            None,
            None,
            "progress",
            "higher",
            "progress",
            "progress of the customer outcome from baseline (0) to target (1); below 0 is worse "
            "than before the agent",
            source="telemetry",
            block="outcome",
        ),
    )
}


def _drift_spec(base: MetricSpec) -> MetricSpec:
    worse = "falls below" if base.better == "higher" else "rises above"
    return MetricSpec(
        f"{base.name}_drift",
        None,
        None,
        "gap",
        "lower",
        base.unit,
        f"how far production's {base.name} {worse} the golden run's, same version "
        "(0: no worse; production runs only)",
    )


DRIFT_METRICS: dict[str, str] = {
    f"{spec.name}_drift": spec.name
    for spec in METRICS.values()
    if spec.kind in ("rate", "mean")
    and spec.suite not in (None, "cost", "latency")
    and spec.scorer is not None
    and spec.unit == "share"
}
"""``<metric>_drift`` → its quality metric: production against golden, gateable like any
metric (``faithfulness_drift: {max: 0.05}``)."""

METRICS.update({name: _drift_spec(METRICS[base]) for name, base in DRIFT_METRICS.items()})

PRODUCTION_METRICS: frozenset[str] = frozenset({"golden_coverage", *DRIFT_METRICS})
"""Metrics only production runs measure (from the window's traffic); golden runs leave their
gates to the production run."""


def metric_names() -> list[str]:
    """Return every metric name a contract may use."""
    return list(METRICS)


TELEMETRY_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.source == "telemetry")
"""The metrics the scorecard measures from production telemetry, in scorecard order."""
