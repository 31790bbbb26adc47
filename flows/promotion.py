"""The ``promotion`` flow: may an agent move up the autonomy ladder? Evidence, then a person.

The candidate (the version the agent serves) is evaluated against the target level's gates,
and the workflow metrics must be measured and no worse than before the agent. Every gate must
``pass``. Where the contract makes the level human-owned, the flow then pauses for an
approver's decision through Prefect's interactive input. The decision, the approver and the
evidence go to ``decisions`` and the ledger; a failed or rejected promotion changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from evals.actions import workflow_gates
from evals.contract import LEVELS, Level, level_rank, load_contract
from evals.gates import Verdict
from evals.store import Decision, ledger_for
from flows.actions import publish
from flows.evaluate import evaluate_agent

__all__ = ["Approval", "promotion"]


class Approval(RunInput):
    """What the approver answers when a human-owned level is at stake."""

    approve: bool
    """Promote (true) or not (false)."""
    approver: str
    """Who decides (name or address); recorded with the decision."""
    reason: str
    """Why, in a sentence; recorded with the decision."""


@flow(name="promotion", log_prints=True)
def promotion(
    contract: str,
    to_level: str,
    results: str = "results",
    approval_timeout_s: int = 24 * 3600,
) -> dict[str, Any]:
    """Evaluate the agent for ``to_level``, ask a person when the contract says so, and promote.

    Returns:
        The decision (``promote``, ``promotion_failed`` or ``promotion_rejected``) as data,
        with ``gates``: every gate's verdict.
    """
    logger = get_run_logger()
    loaded = load_contract(contract)
    if to_level not in LEVELS:
        raise ValueError(f"unknown level '{to_level}'; expected one of {', '.join(LEVELS)}")
    target: Level = to_level
    summary = evaluate_agent(contract, results, "promotion", gate_level=target, act=False)
    ledger = ledger_for(results)
    entry = ledger.get(loaded.agent)
    assert entry is not None  # the evaluation registered it
    gates = [
        {
            "metric": m["metric"],
            "threshold": m["threshold"],
            "verdict": m["verdict"],
            "reason": m["reason"],
        }
        for m in summary["metrics"]
        if m["verdict"] is not None
    ]
    gates += [
        {
            "metric": g.metric,
            "threshold": str(g.threshold),
            "verdict": str(g.verdict),
            "reason": g.reason,
        }
        for g in workflow_gates(loaded)
    ]
    base = Decision(
        agent=loaded.agent,
        kind="promotion_failed",
        reason="",
        actor="promotion flow",
        run_id=summary["run_id"],
        level_before=entry.level,
        level_after=entry.level,
        version_before=entry.active_version,
        version_after=entry.active_version,
        details={"to_level": target, "gates": gates},
    )
    if level_rank(target) <= level_rank(entry.level):
        decision = replace(
            base, reason=f"{loaded.agent} already holds {entry.level}; promotion goes up the ladder"
        )
        return {**publish(loaded, decision, [], results), "gates": gates}
    if summary["version"] != entry.active_version:
        decision = replace(
            base,
            reason=(
                f"evaluated {summary['version']} but the agent serves {entry.active_version}; "
                "promote what is served"
            ),
        )
        return {**publish(loaded, decision, [], results), "gates": gates}
    failing = [g for g in gates if g["verdict"] != str(Verdict.PASS)]
    if failing:
        reason = f"{len(failing)} gate(s) of '{target}' did not pass: " + "; ".join(
            f"{g['metric']} {g['verdict']} ({g['reason']})" for g in failing
        )
        return {**publish(loaded, replace(base, reason=reason), [], results), "gates": gates}
    approver = None
    approval_reason = "every gate passes"
    policy = loaded.autonomy.levels.get(target)
    if policy is not None and policy.human_approval:
        logger.info("%s: every gate of '%s' passes; waiting for an approver", loaded.agent, target)
        answer = pause_flow_run(
            wait_for_input=Approval.with_initial_data(approve=False, approver="", reason=""),
            timeout=approval_timeout_s,
        )
        approver, approval_reason = answer.approver, answer.reason
        if not answer.approve:
            decision = replace(
                base,
                kind="promotion_rejected",
                reason=f"rejected by {approver}: {approval_reason}",
                approved_by=approver,
            )
            return {**publish(loaded, decision, [], results), "gates": gates}
    before, after = ledger.promote(
        loaded.agent, target, summary["version"], summary["run_id"], approver
    )
    decision = replace(
        base,
        kind="promote",
        reason=(
            f"{before.level} → {after.level} on run {summary['run_id']}"
            + (
                f", approved by {approver}: {approval_reason}"
                if approver
                else f": {approval_reason}"
            )
        ),
        level_after=after.level,
        approved_by=approver,
    )
    return {**publish(loaded, decision, [], results), "gates": gates}
