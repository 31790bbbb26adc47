"""The JSON-able summary of one agent's run that flows return and the CLI prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from evals.decisions import Decision
from evals.runs import RunResult

__all__ = ["run_summary"]


def run_summary(
    result: RunResult, decision: Decision | None, notes: list[str], level_after: str
) -> dict[str, Any]:
    """Everything a person or a machine needs to know about one run, as plain data."""
    gates = {g.metric: g for g in result.gates}
    metrics = []
    for name, metric in result.metrics.items():
        gate = gates.get(name)
        metrics.append(
            {
                "metric": name,
                "value": metric.value,
                "low": metric.low,
                "high": metric.high,
                "n": metric.n,
                "n_errors": metric.n_errors,
                "threshold": str(gate.threshold) if gate else None,
                "verdict": str(gate.verdict) if gate else None,
                "reason": gate.reason if gate else metric.note or None,
                "rollback": gate.rollback if gate else False,
            }
        )
    info = result.info
    return {
        "agent": info.agent,
        "run_id": info.run_id,
        "trigger": info.trigger,
        "version": info.version.label,
        "version_hash": info.version.hash,
        "dataset_hash": info.dataset_hash,
        "cases": len(result.cases),
        "level": info.level,
        "level_after": level_after,
        "verdict": str(result.verdict),
        "action": decision.kind if decision else "none",
        "decision": {**asdict(decision), "at": decision.at.isoformat()} if decision else None,
        "notes": notes,
        "metrics": metrics,
    }
