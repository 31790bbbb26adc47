"""The CI verdict for one agent: absolute gates on the candidate, and paired regressions.

A pure function of stored results and the contract, so the verdict over cached runs needs no
model and no Prefect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from evals.contract import Contract, Level
from evals.gates import GateResult, Verdict, evaluate_gates
from evals.metrics import METRICS, Change, MetricValue, PairedDelta, compare_paired

__all__ = ["AgentGate", "case_values", "gate_agent", "metrics_of_run"]


def metrics_of_run(runs: pa.Table, run_id: str) -> dict[str, MetricValue]:
    """The measured metrics of one stored run (its ``runs`` rows)."""
    out = {}
    for row in runs.filter(pa.compute.equal(runs.column("run_id"), run_id)).to_pylist():
        if row["value"] is None and row["method"] is None:
            continue
        out[row["metric"]] = MetricValue(
            row["metric"], row["value"], row["low"], row["high"], row["n"] or 0,
            row["n_errors"] or 0, row["method"] or "", row["confidence"] or 0.95, row["note"] or "",
        )  # fmt: skip
    return out


def case_values(samples: pa.Table, run_id: str, scorer: str) -> dict[str, list[float]]:
    """Case id → the scorer's value(s) in one run.

    Repeated judge scores are kept when recorded; cases that errored are left out.
    """
    mask = pa.compute.and_(
        pa.compute.equal(samples.column("run_id"), run_id),
        pa.compute.equal(samples.column("metric"), scorer),
    )
    out: dict[str, list[float]] = {}
    for row in samples.filter(mask).select(["case_id", "value", "error", "evidence"]).to_pylist():
        if row["error"] is not None or row["value"] is None:
            continue
        repeats = None
        if row["evidence"]:
            repeats = json.loads(row["evidence"]).get("repeats")
        out[row["case_id"]] = [float(v) for v in repeats] if repeats else [float(row["value"])]
    return out


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
    runs: pa.Table,
    samples: pa.Table,
    candidate_run: str,
    baseline_run: str | None,
    changed_files: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> AgentGate:
    """Hold the candidate run against the level's gates and compare it with the baseline run."""
    autonomy = contract.autonomy
    gates_config = contract.gates(level)
    candidate_metrics = metrics_of_run(runs, candidate_run)
    gates = evaluate_gates(
        gates_config, candidate_metrics, autonomy.min_samples, frozenset(autonomy.rollback.metrics)
    )
    ci = contract.ci
    compared = (
        ci.compare if ci.compare is not None else [m for m in gates_config if m != "error_rate"]
    )
    deltas = []
    if baseline_run is not None:
        for name in compared:
            spec = METRICS[name]
            if spec.scorer is None:
                continue
            deltas.append(
                compare_paired(
                    spec,
                    case_values(samples, baseline_run, spec.scorer),
                    case_values(samples, candidate_run, spec.scorer),
                    confidence=autonomy.confidence,
                    tolerance=ci.tolerance.get(name, 0.0),
                    min_samples=ci.min_samples or autonomy.min_samples,
                )
            )

    def version_of(run_id: str | None) -> str | None:
        if run_id is None:
            return None
        rows = runs.filter(pa.compute.equal(runs.column("run_id"), run_id)).slice(0, 1).to_pylist()
        return rows[0]["version"] if rows else None

    return AgentGate(
        agent=contract.agent,
        level=level,
        candidate_run=candidate_run,
        candidate_version=version_of(candidate_run) or "?",
        baseline_run=baseline_run,
        baseline_version=version_of(baseline_run),
        gates=gates,
        deltas=deltas,
        changed_files=list(changed_files),
        notes=list(notes),
    )
