"""What a breach causes: an escalation, or a rollback that re-pins the last good version.

Pure engine code: each function returns the :class:`Decision` to record; the caller (a flow,
the CLI, a test) writes it and shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from evals.actions._breach import Breach, describe_breaches
from evals.actions._notify import deliver
from evals.contract import Contract
from evals.decisions import Decision
from evals.store import Ledger, NoGoodVersion

__all__ = ["escalate", "incident_markdown", "rollback"]


def _payload(contract: Contract, decision: Decision, breaches: Sequence[Breach]) -> dict[str, Any]:
    verb = {
        "escalate": "escalated",
        "rollback": "rolled back",
        "rollback_refused": "needs a rollback that was refused",
    }.get(decision.kind, decision.kind)
    headline = f"impactgate: {contract.agent} {verb}"
    lines = [
        headline,
        decision.reason,
        describe_breaches(breaches),
        f"Owner: {contract.autonomy.escalation.owner}",
    ]
    return {
        "text": "\n".join(line for line in lines if line),
        "agent": contract.agent,
        "kind": decision.kind,
        "run_id": decision.run_id,
        "owner": contract.autonomy.escalation.owner,
        "level_before": decision.level_before,
        "level_after": decision.level_after,
        "version_before": decision.version_before,
        "version_after": decision.version_after,
        "breaches": [b.to_dict() for b in breaches],
    }


def _with_notifications(
    contract: Contract, decision: Decision, breaches: Sequence[Breach]
) -> Decision:
    notifications = deliver(
        contract.autonomy.escalation.channels, _payload(contract, decision, breaches)
    )
    return replace(decision, notifications=notifications)


def escalate(
    contract: Contract,
    breaches: Sequence[Breach],
    *,
    run_id: str,
    version: str,
    level: str,
    actor: str,
) -> Decision:
    """Tell the owner through every channel; the agent keeps its version and level."""
    decision = Decision(
        agent=contract.agent,
        kind="escalate",
        reason=f"{version} breaches level '{level}': " + ", ".join(b.short() for b in breaches),
        actor=actor,
        run_id=run_id,
        metrics=[b.metric for b in breaches],
        level_before=level,
        level_after=level,
        version_before=version,
        version_after=version,
        details={
            "owner": contract.autonomy.escalation.owner,
            "breaches": [b.to_dict() for b in breaches],
        },
    )
    return _with_notifications(contract, decision, breaches)


def rollback(
    contract: Contract,
    ledger: Ledger,
    breaches: Sequence[Breach],
    *,
    run_id: str | None,
    actor: str,
) -> Decision:
    """Re-pin the last good version and demote as the contract says, then tell the owner.

    When no version has ever passed, nothing is changed and the decision is
    ``rollback_refused``: the owner is told loudly instead.
    """
    rule = contract.autonomy.rollback
    metrics = [b.metric for b in breaches]
    reason = "rollback on " + (", ".join(b.short() for b in breaches) or "request")
    entry = ledger.get(contract.agent)
    try:
        before, after = ledger.rollback(contract.agent, rule.demote_to, reason, run_id)
    except NoGoodVersion as exc:
        decision = Decision(
            agent=contract.agent,
            kind="rollback_refused",
            reason=f"{exc}; the agent stays on {entry.active_version if entry else '?'} — act now",
            actor=actor,
            run_id=run_id,
            metrics=metrics,
            level_before=entry.level if entry else None,
            level_after=entry.level if entry else None,
            version_before=entry.active_version if entry else None,
            version_after=entry.active_version if entry else None,
            details={"breaches": [b.to_dict() for b in breaches]},
        )
        return _with_notifications(contract, decision, breaches)
    same = before.active_version == after.active_version
    decision = Decision(
        agent=contract.agent,
        kind="rollback",
        reason=(
            f"{reason}: {'stays on' if same else 're-pinned'} {after.active_version} "
            f"({after.last_good_source}), level {before.level} → {after.level}"
        ),
        actor=actor,
        run_id=run_id,
        metrics=metrics,
        level_before=before.level,
        level_after=after.level,
        version_before=before.active_version,
        version_after=after.active_version,
        details={
            "breaches": [b.to_dict() for b in breaches],
            "last_good_source": after.last_good_source,
        },
    )
    return _with_notifications(contract, decision, breaches)


def incident_markdown(contract: Contract, decision: Decision, breaches: Sequence[Breach]) -> str:
    """The incident as Markdown (Prefect artifact, reports)."""
    rows = "\n".join(
        f"| {b.metric} | {b.verdict} | {'' if b.value is None else f'{b.value:.4g}'} | "
        f"{'' if b.low is None else f'{b.low:.4g}'} – {'' if b.high is None else f'{b.high:.4g}'} | "
        f"{b.threshold} | {'yes' if b.rollback else 'no'} |"
        for b in breaches
    )
    notes = "\n".join(f"- {n}" for n in decision.notifications) or "- no channels configured"
    return (
        f"# {contract.agent}: {decision.kind.replace('_', ' ')}\n\n"
        f"{decision.reason}\n\n"
        f"- run: `{decision.run_id}`\n"
        f"- version: {decision.version_before} → {decision.version_after}\n"
        f"- level: {decision.level_before} → {decision.level_after}\n"
        f"- owner: {contract.autonomy.escalation.owner}\n\n"
        "| metric | verdict | value | interval | threshold | rolls back |\n"
        "|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"Notifications:\n{notes}\n"
    )
