"""Breaches: the gates that failed, in a compact form that travels to flows and receivers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from evals.contract import SEVERITIES
from evals.gates import GateResult, Verdict
from evals.metrics import fmt_value

__all__ = ["Breach", "breaches_from", "describe_breaches", "worst_severity"]


@dataclass(frozen=True)
class Breach:
    """One gate of the current level that did not pass."""

    metric: str
    verdict: str
    value: float | None
    low: float | None
    high: float | None
    threshold: str
    """Direction and bound, e.g. ``≤ 0.1``."""
    reason: str
    rollback: bool
    """The contract rolls back on this metric."""

    @property
    def severity(self) -> str:
        """``critical`` when it rolls back, ``high`` for a failed gate, ``medium`` otherwise."""
        if self.rollback:
            return "critical"
        return "high" if self.verdict == "fail" else "medium"

    @classmethod
    def from_gate(cls, gate: GateResult) -> Breach:
        """Build from a gate result."""
        observed = gate.observed
        return cls(
            metric=gate.metric,
            verdict=str(gate.verdict),
            value=observed.value if observed else None,
            low=observed.low if observed else None,
            high=observed.high if observed else None,
            threshold=str(gate.threshold),
            reason=gate.reason,
            rollback=gate.rollback and gate.verdict == Verdict.FAIL,
        )

    def short(self) -> str:
        """``hallucination_rate 0.4 (needs ≤ 0.15)``."""
        value = "no data" if self.value is None else fmt_value(self.metric, self.value)
        return f"{self.metric} {value} (needs {self.threshold})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (flow parameters, webhook bodies)."""
        return asdict(self)


def breaches_from(gates: Sequence[GateResult], include_inconclusive: bool) -> list[Breach]:
    """Gates that breach: failures, and inconclusive ones when the contract asks."""
    bad = {Verdict.FAIL, Verdict.INCONCLUSIVE} if include_inconclusive else {Verdict.FAIL}
    return [Breach.from_gate(g) for g in gates if g.verdict in bad]


def describe_breaches(breaches: Sequence[Breach]) -> str:
    """One line per breach."""
    return "\n".join(f"- {b.metric} ({b.verdict}): {b.reason}" for b in breaches)


def worst_severity(breaches: Sequence[Breach]) -> str:
    """The most severe of the breaches (``medium`` when there are none)."""
    return max((b.severity for b in breaches), key=SEVERITIES.index, default="medium")
