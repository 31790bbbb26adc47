"""The CI verdict for one agent: absolute gates on the candidate, and paired regressions.

A pure function of stored results and the contract, so the verdict over cached runs needs no
model and no Prefect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.contract import Contract, Level
from evals.gates import GateResult, Verdict, evaluate_gates
from evals.metrics import METRICS, Change, PairedDelta, compare_paired
from evals.store import RunRecord, SampleRecord

__all__ = ["AgentGate", "case_values", "compare_samples", "gate_agent"]


def case_values(samples: Sequence[SampleRecord], scorer: str) -> dict[str, list[float]]:
    """Case id → the scorer's value(s) in one run's samples.

    Repeated judge scores are kept when recorded; cases that errored are left out.
    """
    out: dict[str, list[float]] = {}
    for sample in samples:
        if sample.metric != scorer or sample.error is not None or sample.value is None:
            continue
        repeats = sample.evidence.get("repeats") if isinstance(sample.evidence, dict) else None
        out[sample.case_id] = [float(v) for v in repeats] if repeats else [float(sample.value)]
    return out


def compare_samples(
    metrics: Sequence[str],
    baseline: Sequence[SampleRecord],
    candidate: Sequence[SampleRecord],
    *,
    confidence: float,
    tolerance: dict[str, float] | None = None,
    min_samples: int = 1,
) -> list[PairedDelta]:
    """Candidate vs baseline, case by case, for each metric that a scorer measures per case.

    The one comparison behind the CI verdict and the report's candidate-vs-baseline page:
    each delta's ``worse`` and ``better`` lists are the cases that got worse or better.
    """
    deltas = []
    for name in metrics:
        spec = METRICS[name]
        if spec.scorer is None:
            continue
        deltas.append(
            compare_paired(
                spec,
                case_values(baseline, spec.scorer),
                case_values(candidate, spec.scorer),
                confidence=confidence,
                tolerance=(tolerance or {}).get(name, 0.0),
                min_samples=min_samples,
            )
        )
    return deltas


@dataclass(frozen=True)
class AgentGate:
    """Everything the CI gate decided about one agent."""

    agent: str
    level: str
    candidate_run: str
    candidate_version: str
    baseline_run: str | None
    baseline_version: str | None
    gates: list[GateResult]
    deltas: list[PairedDelta]
    changed_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Why the gate fails, one line per reason (empty when it passes)."""
        lines = [
            f"{g.metric} {g.verdict}: {g.reason}" for g in self.gates if g.verdict != Verdict.PASS
        ]
        lines += [
            f"{d.metric} regressed: {d.reason}"
            for d in self.deltas
            if d.change == Change.REGRESSION
        ]
        return lines

    @property
    def passed(self) -> bool:
        """Every absolute gate passes and nothing regressed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "agent": self.agent,
            "level": self.level,
            "passed": self.passed,
            "failures": self.failures,
            "candidate": {"run_id": self.candidate_run, "version": self.candidate_version},
            "baseline": {"run_id": self.baseline_run, "version": self.baseline_version},
            "changed_files": self.changed_files,
            "notes": self.notes,
            "gates": [
                {
                    "metric": g.metric,
                    "threshold": str(g.threshold),
                    "value": g.observed.value if g.observed else None,
                    "low": g.observed.low if g.observed else None,
                    "high": g.observed.high if g.observed else None,
                    "n": g.observed.n if g.observed else 0,
                    "verdict": str(g.verdict),
                    "reason": g.reason,
                }
                for g in self.gates
            ],
            "comparisons": [
                {
                    "metric": d.metric,
                    "baseline": d.baseline,
                    "candidate": d.candidate,
                    "delta": d.delta,
                    "low": d.low,
                    "high": d.high,
                    "n": d.n,
                    "tolerance": d.tolerance,
                    "change": str(d.change),
                    "reason": d.reason,
                    "p_value": d.p_value,
                    "judge_sd": d.judge_sd,
                    "worse_cases": d.worse,
                    "better_cases": d.better,
                }
                for d in self.deltas
            ],
        }


def gate_agent(
    contract: Contract,
    level: Level,
    candidate: RunRecord,
    candidate_samples: Sequence[SampleRecord],
    baseline: RunRecord | None,
    baseline_samples: Sequence[SampleRecord] = (),
    changed_files: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> AgentGate:
    """Hold the candidate run against the level's gates and compare it with the baseline run."""
    autonomy = contract.autonomy
    gates_config = contract.gates(level)
    gates = evaluate_gates(
        gates_config,
        candidate.measured(),
        autonomy.min_samples,
        frozenset(autonomy.rollback.metrics),
    )
    ci = contract.ci
    compared = (
        ci.compare if ci.compare is not None else [m for m in gates_config if m != "error_rate"]
    )
    deltas = (
        compare_samples(
            compared,
            baseline_samples,
            candidate_samples,
            confidence=autonomy.confidence,
            tolerance=ci.tolerance,
            min_samples=ci.min_samples or autonomy.min_samples,
        )
        if baseline is not None
        else []
    )
    return AgentGate(
        agent=contract.agent,
        level=level,
        candidate_run=candidate.run_id,
        candidate_version=candidate.version,
        baseline_run=baseline.run_id if baseline else None,
        baseline_version=baseline.version if baseline else None,
        gates=gates,
        deltas=deltas,
        changed_files=list(changed_files),
        notes=list(notes),
    )
