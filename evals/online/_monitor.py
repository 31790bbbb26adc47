"""Nightly production verdicts that do not cry wolf: gates on sampled metrics, monitored.

A production run's gates on metrics estimated from its sample (rates and means of shares:
faithfulness, hallucination rate, policy violation rate …) are asked again every night on a
fresh sample. Held against a 95% interval each night, an unchanged agent would fail about one
night in twenty. So a production run's verdict on such a gate is:

- ``pass`` when tonight's interval clears the threshold (what a promotion needs);
- ``fail`` only when the anytime-valid evidence of a breach, accumulated over this and the
  earlier production runs of the monitoring period (``evals.metrics.monitor``), reaches
  ``1 / alpha`` — so over the whole period an unchanged agent is escalated with probability at
  most ``alpha``;
- ``inconclusive`` otherwise: tonight's sample alone does not clear the gate, and the evidence
  over the nights is not (yet) a breach.

Metrics measured on every trace of the window (error rate, cost, latency) have no sampling
error and keep their ordinary verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from evals.contract import Monitoring
from evals.gates import GateResult, Verdict
from evals.metrics import METRICS, mean_log_evalue, monitor, rate_log_evalue
from evals.store import RunRecord

__all__ = ["earlier_nights", "monitored", "monitored_gates", "night_log_evalue"]


def _window_end(run: RunRecord) -> datetime:
    until = (run.production or {}).get("until")
    return datetime.fromisoformat(until) if isinstance(until, str) else run.started_at


def earlier_nights(runs: Sequence[RunRecord], until: datetime, horizon: int) -> list[RunRecord]:
    """The earlier nights of tonight's monitoring period, oldest first.

    A night is a UTC day of the window's end: of several production runs whose windows end on
    the same day (a rerun, a run started by hand after the nightly) only the last counts, and
    tonight replaces every run of its own day, so judging the same traffic again never adds
    evidence. Runs of windows ending after tonight's (a backfill judged later) do not count.

    Args:
        runs: the agent's stored runs (any source, any order).
        until: the end of tonight's window.
        horizon: the monitoring period in nights, tonight included.
    """
    if horizon <= 1:
        return []
    tonight = until.date()
    by_day: dict[date, RunRecord] = {}
    for run in sorted(
        (r for r in runs if r.source == "production"),
        key=lambda r: (_window_end(r), r.started_at),
    ):
        end = _window_end(run)
        if end < until and end.date() < tonight:
            by_day[end.date()] = run
    return [by_day[day] for day in sorted(by_day)][-(horizon - 1) :]


def night_log_evalue(
    metric: str,
    value: float | None,
    n: int,
    values: Sequence[float] | None,
    direction: str,
    bound: float,
    breach: float,
) -> float | None:
    """One night's log e-value against the gate, or ``None`` when the night has no evidence.

    Rates use the night's events among its ``n`` cases (``value * n``); means use the night's
    per-case ``values``.
    """
    spec = METRICS[metric]
    if n <= 0 or value is None:
        return None
    if spec.kind == "rate" and direction == "max":
        if bound + breach > 1.0:
            return None
        events = round(value * n)
        return rate_log_evalue(events, n, bound, bound + breach)
    if spec.kind == "rate" and direction == "min":
        # "at least bound" is "the complement at most 1 - bound"
        if bound - breach < 0.0:
            return None
        events = n - round(value * n)
        return rate_log_evalue(events, n, 1.0 - bound, 1.0 - bound + breach)
    if spec.kind == "mean" and spec.unit == "share" and values:
        return mean_log_evalue(values, bound, "min" if direction == "min" else "max", breach)
    return None


def monitored(metric: str) -> bool:
    """Whether a production gate on ``metric`` is monitored (estimated from the sample)."""
    spec = METRICS[metric]
    return spec.suite not in (None, "cost", "latency") and spec.unit == "share"


def monitored_gates(
    gates: Sequence[GateResult],
    tonight: Mapping[str, Sequence[float]],
    earlier: Sequence[RunRecord],
    earlier_values: Mapping[str, Mapping[str, Sequence[float]]],
    config: Monitoring,
) -> tuple[list[GateResult], dict[str, dict[str, float | int | bool | None]]]:
    """Tonight's gates with monitored verdicts, and the evidence behind each.

    Args:
        gates: tonight's gates as the interval rule judged them.
        tonight: metric → tonight's per-case values (for means).
        earlier: the earlier production runs of the monitoring period, oldest first.
        earlier_values: run id → metric → that night's per-case values (for means).
        config: the contract's ``evals.production.monitoring``.
    """
    out = []
    evidence: dict[str, dict[str, float | int | bool | None]] = {}
    nights = list(earlier)[-(config.horizon - 1) :] if config.horizon > 1 else []
    for gate in gates:
        if not monitored(gate.metric) or gate.observed is None:
            out.append(gate)
            continue
        direction, bound = gate.threshold.direction, gate.threshold.bound
        steps = []
        for run in nights:
            record = run.metrics.get(gate.metric)
            if record is None:
                continue
            step = night_log_evalue(
                gate.metric,
                record.value,
                record.n,
                earlier_values.get(run.run_id, {}).get(gate.metric),
                direction,
                bound,
                config.breach,
            )
            if step is not None:
                steps.append(step)
        observed = gate.observed
        step = night_log_evalue(
            gate.metric,
            observed.value,
            observed.n,
            tonight.get(gate.metric),
            direction,
            bound,
            config.breach,
        )
        if step is None:
            out.append(gate)
            continue
        steps.append(step)
        result = monitor(steps, config.alpha, config.horizon)
        evidence[gate.metric] = {
            "alarm": result.alarm,
            "log_evidence": result.log_evidence,
            "nights": result.nights,
            "since": result.since,
            "alpha": config.alpha,
            "horizon": config.horizon,
        }
        if result.alarm:
            out.append(replace(gate, verdict=Verdict.FAIL, reason=result.reason(gate.metric)))
        elif gate.verdict == Verdict.FAIL:
            out.append(
                replace(
                    gate,
                    verdict=Verdict.INCONCLUSIVE,
                    reason=(
                        f"tonight's sample does not clear {gate.threshold}, but "
                        + result.reason(gate.metric)
                    ),
                )
            )
        else:
            out.append(gate)
    return out, evidence
