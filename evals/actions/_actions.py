"""What a breach causes: an escalation, a rollback, a recovery; and a person's rollback.

Pure engine code: each function returns the :class:`Decision` to record; the caller (a flow,
the CLI, a test) writes it and shows it. Incidents live in the ledger: the same breach on
consecutive runs updates one open incident instead of paging again, and a passing run closes
it (and says so).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from evals.actions._breach import Breach, describe_breaches, worst_severity
from evals.actions._notify import deliver, post_json
from evals.contract import SEVERITIES, Contract, Level, RollbackHook
from evals.metrics import fmt_interval, fmt_value
from evals.store import Decision, IncidentUpdate, Ledger, LedgerEntry, NoGoodVersion

__all__ = ["escalate", "incident_markdown", "recover", "rollback", "rollback_to"]

_VERBS = {
    "escalate": "escalated",
    "rollback": "rolled back",
    "rollback_refused": "needs a rollback that was refused",
    "recover": "recovered",
}


def _payload(
    contract: Contract, decision: Decision, breaches: Sequence[Breach], severity: str
) -> dict[str, Any]:
    headline = (
        f"impactgate: {contract.agent} {_VERBS.get(decision.kind, decision.kind.replace('_', ' '))}"
    )
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
        "severity": severity,
        "run_id": decision.run_id,
        "owner": contract.autonomy.escalation.owner,
        "incident": decision.details.get("incident"),
        "level_before": decision.level_before,
        "level_after": decision.level_after,
        "version_before": decision.version_before,
        "version_after": decision.version_after,
        "breaches": [b.to_dict() for b in breaches],
    }


def _notify(
    contract: Contract, decision: Decision, breaches: Sequence[Breach], severity: str
) -> Decision:
    payload = _payload(contract, decision, breaches, severity)
    notifications = deliver(contract.autonomy.escalation.channels, payload, severity)
    return replace(
        decision,
        notifications=[*decision.notifications, *notifications],
        details={**decision.details, "payload": payload},
    )


def _incident_note(update: IncidentUpdate) -> dict[str, Any]:
    incident = update.incident
    return {
        "incident": incident.id,
        "incident_runs": incident.runs,
        "incident_metrics": incident.metrics,
    }


def escalate(
    contract: Contract,
    ledger: Ledger,
    breaches: Sequence[Breach],
    *,
    run_id: str,
    version: str,
    level: str,
    actor: str,
) -> Decision:
    """Open (or update) the agent's incident and tell the owner when it is news.

    The agent keeps its version and level. A breach that repeats an open incident is recorded
    without paging; new metrics or a higher severity page again.
    """
    severity = worst_severity(breaches)
    held: Level = level  # type: ignore[assignment]
    update = ledger.record_breach(
        contract.agent, [b.metric for b in breaches], severity, run_id, held
    )
    shorts = ", ".join(b.short() for b in breaches)
    if update.opened:
        reason = f"{version} breaches level '{level}': {shorts}"
    else:
        incident = update.incident
        reason = f"{version} still breaches level '{level}' (incident #{incident.id}, run {incident.runs}): {shorts}"
    decision = Decision(
        agent=contract.agent,
        kind="escalate",
        reason=reason,
        actor=actor,
        run_id=run_id,
        metrics=[b.metric for b in breaches],
        level_before=level,
        level_after=level,
        version_before=version,
        version_after=version,
        details={
            "owner": contract.autonomy.escalation.owner,
            "severity": severity,
            "breaches": [b.to_dict() for b in breaches],
            **_incident_note(update),
        },
    )
    if not update.page:
        return replace(
            decision,
            notifications=[
                f"not paged: incident #{update.incident.id} is already open for this breach"
            ],
        )
    return _notify(contract, decision, breaches, severity)


def _call_hook(contract: Contract, hook: RollbackHook, change: dict[str, Any]) -> tuple[bool, str]:
    """Run the contract's rollback hook; never raises."""
    if hook.kind == "webhook":
        url = hook.url or os.environ.get(hook.url_env or "", "")
        label = f"rollback hook webhook {'$' + hook.url_env if hook.url_env else hook.url}"
        if not url:
            return False, f"{label}: not called: the environment variable is not set"
        return post_json(url, change, label, hook.timeout_s)
    assert hook.function is not None
    module_name, _, attribute = hook.function.partition(":")
    label = f"rollback hook {hook.function}"
    root = str(contract.root)
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        function = getattr(importlib.import_module(module_name), attribute)
        function(change)
    except Exception as exc:  # a failed hook is recorded loudly, not a crashed rollback
        return False, f"{label}: failed: {type(exc).__name__}: {exc}"
    finally:
        if added:
            sys.path.remove(root)
    return True, f"{label}: done"


HOOK_FAILED = "SERVING NOT ROLLED BACK: the rollback hook failed; roll back by hand"


def _apply_hook(
    contract: Contract, before: LedgerEntry, after: LedgerEntry, reason: str, run_id: str | None
) -> tuple[list[str], dict[str, Any]]:
    """Run the rollback hook; its notes, and ``{"action_failed": ...}`` when it failed."""
    hook = contract.autonomy.rollback.hook
    if hook is None:
        return [
            "no rollback hook configured: the ledger records the rollback; "
            "serving is unchanged until someone deploys it"
        ], {}
    if before.active_version == after.active_version:
        return ["rollback hook not called: the agent already serves that version"], {}
    change = {
        "agent": contract.agent,
        "version_before": before.active_version,
        "version_after": after.active_version,
        "level_before": before.level,
        "level_after": after.level,
        "reason": reason,
        "run_id": run_id,
    }
    ok, note = _call_hook(contract, hook, change)
    if ok:
        return [note], {}
    return [note, HOOK_FAILED], {"action_failed": HOOK_FAILED}


def rollback(
    contract: Contract,
    ledger: Ledger,
    breaches: Sequence[Breach],
    *,
    run_id: str | None,
    actor: str,
) -> Decision:
    """Re-pin the last good version, demote, run the rollback hook, and tell the owner.

    It also opens or updates the agent's incident. Idempotent.

    When no version has ever passed, nothing is changed and the decision is
    ``rollback_refused``: the owner is told loudly instead.
    """
    rule = contract.autonomy.rollback
    metrics = [b.metric for b in breaches]
    reason = "rollback on " + (", ".join(b.short() for b in breaches) or "request")
    entry = ledger.get(contract.agent)
    update = ledger.record_breach(
        contract.agent,
        metrics,
        "critical",
        run_id,
        entry.level if entry else contract.autonomy.level,
    )
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
            details={
                "breaches": [b.to_dict() for b in breaches],
                "severity": "critical",
                **_incident_note(update),
            },
        )
        return _notify(contract, decision, breaches, "critical")
    same = before.active_version == after.active_version and before.level == after.level
    hook_notes, failed = _apply_hook(contract, before, after, reason, run_id)
    decision = Decision(
        agent=contract.agent,
        kind="rollback",
        reason=(
            f"{reason}: {'already on' if same else 're-pinned'} {after.active_version} "
            f"({after.last_good_source}), level {before.level} → {after.level}"
        ),
        actor=actor,
        run_id=run_id,
        metrics=metrics,
        level_before=before.level,
        level_after=after.level,
        version_before=before.active_version,
        version_after=after.active_version,
        notifications=hook_notes,
        details={
            "breaches": [b.to_dict() for b in breaches],
            "last_good_source": after.last_good_source,
            "severity": "critical",
            **_incident_note(update),
            **failed,
        },
    )
    if same and not update.page:
        return replace(
            decision,
            notifications=[
                *hook_notes,
                f"not paged: incident #{update.incident.id} is already open",
            ],
        )
    return _notify(contract, decision, breaches, "critical")


def rollback_to(
    contract: Contract,
    ledger: Ledger,
    *,
    version: str | None,
    demote_to: Level | None,
    reason: str,
    actor: str,
) -> Decision:
    """A person's rollback: to the last good version (default) or a named one.

    Raises:
        NoGoodVersion: no version given and none has passed.
        KeyError: the agent is not in the ledger.
    """
    entry = ledger.get(contract.agent)
    if entry is None:
        raise KeyError(contract.agent)
    target = version or entry.last_good_version
    if target is None:
        raise NoGoodVersion(
            f"{contract.agent}: no version has passed its gates; name one with --to"
        )
    before, after = ledger.repin(contract.agent, target, demote_to, reason, actor)
    notes, failed = _apply_hook(contract, before, after, reason, None)
    decision = Decision(
        agent=contract.agent,
        kind="rollback",
        reason=f"{reason}: {before.active_version} → {after.active_version}, level {before.level} → {after.level}",
        actor=actor,
        level_before=before.level,
        level_after=after.level,
        version_before=before.active_version,
        version_after=after.active_version,
        notifications=notes,
        details={"manual": True, **failed},
    )
    return _notify(contract, decision, [], "high")


def recover(
    contract: Contract,
    ledger: Ledger,
    *,
    run_id: str,
    version: str,
    level: str,
    actor: str,
    judged: Collection[str] | None = None,
) -> Decision | None:
    """Close the agent's open incidents after a run that breached nothing; tell the owner.

    ``judged``: the metrics the run gated; incidents on metrics it did not judge stay open.
    """
    closed = ledger.close_incidents(contract.agent, run_id, level, judged)  # type: ignore[arg-type]
    if not closed:
        return None
    ids = ", ".join(f"#{i.id}" for i in closed)
    decision = Decision(
        agent=contract.agent,
        kind="recover",
        reason=(
            f"{version} passes level '{level}' again: incident {ids} closed after "
            f"{sum(i.runs for i in closed)} breaching run(s)"
        ),
        actor=actor,
        run_id=run_id,
        metrics=sorted({m for i in closed for m in i.metrics}),
        level_before=level,
        level_after=level,
        version_before=version,
        version_after=version,
        details={"incidents": [i.id for i in closed]},
    )
    return _notify(
        contract,
        decision,
        [],
        max((i.severity for i in closed), key=SEVERITIES.index),
    )


def incident_markdown(contract: Contract, decision: Decision, breaches: Sequence[Breach]) -> str:
    """The decision as Markdown (Prefect artifact, reports)."""
    rows = "\n".join(
        f"| {b.metric} | {b.verdict} | {fmt_value(b.metric, b.value)} | "
        f"{fmt_interval(b.metric, b.low, b.high) or '—'} | "
        f"{b.threshold} | {'yes' if b.rollback else 'no'} |"
        for b in breaches
    )
    table = (
        "| metric | verdict | value | interval | threshold | rolls back |\n|---|---|---|---|---|---|\n"
        + rows
        + "\n\n"
        if breaches
        else ""
    )
    notes = "\n".join(f"- {n}" for n in decision.notifications) or "- no channels configured"
    incident = decision.details.get("incident")
    return (
        f"# {contract.agent}: {decision.kind.replace('_', ' ')}\n\n"
        f"{decision.reason}\n\n"
        + (f"- run: `{decision.run_id}`\n" if decision.run_id else f"- by: {decision.actor}\n")
        + (f"- incident: #{incident}\n" if incident else "")
        + f"- version: {decision.version_before} → {decision.version_after}\n"
        f"- level: {decision.level_before} → {decision.level_after}\n"
        f"- owner: {contract.autonomy.escalation.owner}\n\n"
        f"{table}Notifications:\n{notes}\n"
    )
