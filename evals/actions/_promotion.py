"""What a promotion needs beyond the eval gates: the workflow metrics, measured and no worse.

The contract's workflow block says where each workflow metric started (``baseline``); a
promotion needs every one measured in production and, with the contract's confidence, at
least as good as that baseline: the agent may not have made the workflow worse. The
measurements come from the scorecard (``evals.scorecard``, the ``telemetry`` block: cycle time
is its p50), else from a ``workflow.observations`` file, where rates come with the number of
requests they were measured on (Wilson interval) and cycle time with its own interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evals.contract import Contract, Threshold
from evals.dataset import read_models
from evals.gates import GateResult, Verdict, judge_gate
from evals.metrics import MetricValue, wilson_interval

__all__ = ["WORKFLOW_METRICS", "Observation", "workflow_gates"]

WorkflowName = Literal["cycle_time", "automation_rate", "escalation_rate", "rework_rate"]
WORKFLOW_METRICS: dict[str, Literal["higher", "lower"]] = {
    "cycle_time": "lower",
    "automation_rate": "higher",
    "escalation_rate": "lower",
    "rework_rate": "lower",
}


class Observation(BaseModel):
    """One measured workflow metric (a row of the observations file)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    metric: WorkflowName
    """Which workflow metric."""
    value: float
    """The measured value (a share for rates, the contract's unit for cycle time)."""
    n: int | None = Field(default=None, ge=1)
    """Requests the rate was measured on (rates)."""
    low: float | None = None
    """Lower end of the value's interval (non-rates)."""
    high: float | None = None
    """Upper end of the value's interval (non-rates)."""
    window: str | None = None
    """The period measured (e.g. ``2026-11-01..2026-11-27``)."""


_MEASURED = {
    "cycle_time": "cycle_time_p50_h",
    "automation_rate": "automation_rate",
    "escalation_rate": "escalation_rate",
    "rework_rate": "rework_rate",
}
"""Workflow metric → the scorecard metric that measures it."""


def workflow_gates(
    contract: Contract, measured: Mapping[str, MetricValue] | None = None
) -> list[GateResult]:
    """One gate per workflow metric: measured, and no worse than its baseline.

    Args:
        contract: the agent's contract (baselines, observations file, confidence).
        measured: the scorecard's metrics (``Scorecard.metrics()``); a workflow metric it
            measured is judged on that, the others on the observations file.
    """
    workflow = contract.workflow
    confidence = contract.autonomy.confidence
    observed: dict[str, Observation] = {}
    if workflow.observations is not None:
        for _, row in read_models(Path(contract.resolve(workflow.observations)), Observation):
            observed[row.metric] = row  # the last row of a metric is the latest measurement
    gates = []
    for name, better in WORKFLOW_METRICS.items():
        baseline = getattr(workflow, name).baseline
        threshold = Threshold(min=baseline) if better == "higher" else Threshold(max=baseline)
        label = f"workflow.{name}"
        telemetry = (measured or {}).get(_MEASURED[name])
        if telemetry is not None and telemetry.value is not None:
            value = replace(telemetry, name=label if name != "cycle_time" else telemetry.name)
            verdict, reason = judge_gate(value, threshold, 1)
            gates.append(
                GateResult(
                    label, threshold, value, verdict,
                    f"{reason} (baseline {baseline:g}; measured from production telemetry)",
                )
            )  # fmt: skip
            continue
        found = observed.get(name)
        if found is None:
            why = (
                "no production telemetry (a telemetry block) and no observations file "
                "(workflow.observations)"
                if workflow.observations is None
                else "not in the observations file"
            )
            if telemetry is not None and telemetry.note:
                why = f"{telemetry.note}; {why}"
            gates.append(GateResult(label, threshold, None, Verdict.FAIL, f"not measured: {why}"))
            continue
        if name != "cycle_time" and found.n is not None:
            low, high = wilson_interval(round(found.value * found.n), found.n, confidence)
            value = MetricValue(label, found.value, low, high, found.n, 0, "wilson", confidence)
        else:
            note = (
                ""
                if found.low is not None and found.high is not None
                else "give low and high (or n for a rate)"
            )
            value = MetricValue(
                label,
                found.value,
                found.low,
                found.high,
                found.n or 1,
                0,
                "given",
                confidence,
                note,
            )
        verdict, reason = judge_gate(value, threshold, 1)
        window = f" over {found.window}" if found.window else ""
        gates.append(
            GateResult(
                label, threshold, value, verdict, f"{reason} (baseline {baseline:g}{window})"
            )
        )
    return gates
