"""Three-valued verdicts: a gated number passes only when its whole interval clears the bar.

- ``pass``: the whole interval is on the right side of the threshold;
- ``fail``: the point estimate is on the wrong side (missing data fails too);
- ``inconclusive``: otherwise, or when fewer cases than ``min_samples`` were scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from evals.contract import Threshold
from evals.metrics import MetricValue, fmt_interval, fmt_value

__all__ = ["GateResult", "Verdict", "evaluate_gates", "judge_gate", "overall_verdict"]


class Verdict(StrEnum):
    """Outcome of one gate."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class GateResult:
    """One threshold held against one measured metric."""

    metric: str
    threshold: Threshold
    observed: MetricValue | None
    verdict: Verdict
    reason: str
    """Why, with the numbers."""
    rollback: bool = False
    """A failure of this gate rolls the agent back (the contract's ``rollback.metrics``)."""


def judge_gate(
    observed: MetricValue | None, threshold: Threshold, min_samples: int
) -> tuple[Verdict, str]:
    """Verdict and reason for one gate.

    Args:
        observed: the measured metric, or ``None`` when the run did not produce it.
        threshold: ``min`` (higher is better) or ``max`` (lower is better).
        min_samples: fewest values the metric needs before it can pass.
    """
    if observed is None:
        return Verdict.FAIL, "no data: the run did not measure this metric"
    if observed.value is None:
        return Verdict.FAIL, observed.note or "no data"
    name, value, bound = observed.name, observed.value, threshold.bound
    low, high = observed.low, observed.high
    interval = fmt_interval(name, low, high) or "[?, ∞]"
    shown = f"{fmt_value(name, value)} {interval}"
    wrong_side = value < bound if threshold.direction == "min" else value > bound
    if wrong_side:
        return Verdict.FAIL, f"{shown} is on the wrong side of {threshold}"
    if observed.n < min_samples:
        return (
            Verdict.INCONCLUSIVE,
            f"only {observed.n} scored cases; the contract needs {min_samples} before this gate can pass",
        )
    near = low if threshold.direction == "min" else high
    if near is None:
        return Verdict.INCONCLUSIVE, f"{shown}: {observed.note or 'the interval is unbounded'}"
    clears = near >= bound if threshold.direction == "min" else near <= bound
    if clears:
        return Verdict.PASS, f"{shown} clears {threshold}"
    return (
        Verdict.INCONCLUSIVE,
        f"{shown} straddles {threshold} at {observed.confidence:.0%} confidence; "
        "more cases would decide it",
    )


def evaluate_gates(
    gates: Mapping[str, Threshold],
    metrics: Mapping[str, MetricValue],
    min_samples: int,
    rollback_on: frozenset[str] = frozenset(),
) -> list[GateResult]:
    """Hold every gate against the measured metrics, in gate order."""
    results = []
    for name, threshold in gates.items():
        observed = metrics.get(name)
        # The error budget is counted, not estimated: every case run counts toward it.
        needed = min_samples if name != "error_rate" else 1
        verdict, reason = judge_gate(observed, threshold, needed)
        results.append(GateResult(name, threshold, observed, verdict, reason, name in rollback_on))
    return results


def overall_verdict(gates: Sequence[GateResult]) -> Verdict:
    """``fail`` if any gate failed, ``pass`` if all passed (or there are none), else inconclusive."""
    verdicts = {g.verdict for g in gates}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if verdicts <= {Verdict.PASS}:
        return Verdict.PASS
    return Verdict.INCONCLUSIVE
