"""The ``promotion`` flow: may an agent move up the autonomy ladder? Evidence, then a person.

The candidate (the version the agent serves) is evaluated against the target level's gates,
and the workflow metrics must be measured and no worse than before the agent. Every gate must
``pass``. Where the contract makes the level human-owned, the flow then waits for an
:class:`~flows.approvals.Approval` through Prefect's interactive input:

- a deployment run **suspends**: its process exits, the worker's slot and memory are freed,
  and once answered the server reschedules the run, which a worker of the pool (the same one
  restarted, or another) picks up. The resumed run reads the evidence it stored before
  suspending instead of evaluating again, and promotes only if the ledger still holds what the
  approver was shown;
- a run without a deployment (``impactgate promote`` in its own process) **pauses**: the
  process waits, and the command answers it.

The decision, the approver, when the question was asked and when it was answered, and the
evidence go to ``decisions``, the ledger and the contract's channels. A promotion that does
not happen changes nothing and ends ``Failed``: named ``NotPromoted`` (a gate did not pass,
or the agent changed while it waited) or ``Rejected``, with the reason as its message.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import State, flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import create_flow_run_input, read_flow_run_input
from pydantic import ValidationError

from evals.actions import deliver, workflow_gates
from evals.contract import LEVELS, Contract, level_rank, load_contract
from evals.gates import Verdict
from evals.online import needs_production
from evals.scorecard import measure
from evals.store import Decision, DecisionKind, Ledger, ledger_for
from flows._states import failed
from flows.actions import publish
from flows.approvals import APPROVAL_KEY, EVIDENCE_KEY, Approval, form_description
from flows.evaluate import evaluate_agent

__all__ = ["PROMOTION_SEVERITY", "Approval", "promotion"]

PROMOTION_SEVERITY = "medium"
"""The severity promotion outcomes are sent at: every channel with the default
``min_severity`` hears of them; a channel kept for ``high`` breaches does not."""

_STATE_NAMES = {"promotion_failed": "NotPromoted", "promotion_rejected": "Rejected"}
_VERBS = {
    "promote": "promoted",
    "promotion_failed": "not promoted",
    "promotion_rejected": "promotion rejected",
}


def _run_name() -> str:
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    return f"promote-{Path(str(parameters['contract'])).stem}-to-{parameters['to_level']}"


@flow(name="promotion", log_prints=True, flow_run_name=_run_name)
def promotion(
    contract: str,
    to_level: str,
    results: str = "results",
    approval_timeout_s: int = 24 * 3600,
) -> dict[str, Any] | State:
    """Evaluate the agent for ``to_level``, ask a person when the contract says so, and promote.

    Args:
        contract: path to the contract YAML.
        to_level: the level asked for.
        results: results root (path or URI).
        approval_timeout_s: how long a human-owned level waits for its approver; an
            unanswered promotion then fails and changes nothing.

    Returns:
        The ``promote`` decision as data, with ``gates``: every gate's verdict. A promotion
        that does not happen ends ``Failed`` (``NotPromoted`` or ``Rejected``) with the same
        data, ``promotion_failed`` or ``promotion_rejected``, in its result
        (``flows.run_outcome``).
    """
    logger = get_run_logger()
    loaded = load_contract(contract)
    if to_level not in LEVELS:
        raise ValueError(f"unknown level '{to_level}'; expected one of {', '.join(LEVELS)}")
    ledger = ledger_for(results)
    evidence = _saved_evidence()
    if evidence is None:
        evidence = _gather(loaded, contract, to_level, results, ledger)
        refusal = _refusal(loaded, evidence)
        if refusal is not None:
            return _finish(loaded, _decision(evidence, "promotion_failed", refusal), results)
        policy = loaded.autonomy.levels.get(to_level)
        if policy is None or not policy.human_approval:
            return _promote(loaded, evidence, ledger, results, None, "every gate passes")
        evidence["asked_at"] = datetime.now(UTC).isoformat()
        create_flow_run_input(EVIDENCE_KEY, evidence)
        logger.info(
            "%s: every gate of '%s' passes; waiting for an approver "
            "(`impactgate approve|reject %s --approver WHO --reason WHY`, or the Prefect UI)",
            loaded.agent, to_level, loaded.agent,
        )  # fmt: skip
    try:
        answer, answered_at = _ask(evidence, approval_timeout_s)
    except FlowPauseTimeout:
        hours = approval_timeout_s / 3600
        reason = f"nobody answered within {hours:g} h; {loaded.agent} stays where it is"
        return _finish(loaded, _decision(evidence, "promotion_failed", reason), results)
    except ValidationError:  # a run restarted after it asked, with no answer stored
        reason = f"the run resumed without an approver's answer; {loaded.agent} stays where it is"
        return _finish(loaded, _decision(evidence, "promotion_failed", reason), results)
    timing = {"asked_at": evidence["asked_at"], "answered_at": answered_at.isoformat()}
    if answer.decision == "reject":
        decision = _decision(
            evidence,
            "promotion_rejected",
            f"rejected by {answer.approver}: {answer.reason}",
            approver=answer.approver,
            at=answered_at,
            extra=timing,
        )
        return _finish(loaded, decision, results)
    entry = ledger.get(loaded.agent)
    if entry is None or (entry.level, entry.active_version) != (
        evidence["level_before"],
        evidence["version"],
    ):
        now = f"{entry.active_version} at {entry.level}" if entry else "nothing"
        reason = (
            f"approved by {answer.approver}, but {loaded.agent} changed while it waited: it now "
            f"serves {now}, not {evidence['version']} at {evidence['level_before']}; promote "
            "again on fresh evidence"
        )
        decision = _decision(evidence, "promotion_failed", reason, at=answered_at, extra=timing)
        return _finish(loaded, decision, results)
    return _promote(
        loaded, evidence, ledger, results, answer.approver, answer.reason,
        at=answered_at, extra=timing,
    )  # fmt: skip


def _saved_evidence() -> dict[str, Any] | None:
    """The evidence this run stored before it suspended, or ``None`` on its first attempt."""
    value = read_flow_run_input(EVIDENCE_KEY)
    return value if isinstance(value, dict) else None


def _gather(
    loaded: Contract, contract: str, to_level: str, results: str, ledger: Ledger
) -> dict[str, Any]:
    """Evaluate the served version against ``to_level``'s gates: what a promotion rests on."""
    held = ledger.get(loaded.agent)
    get_run_logger().info(
        "%s holds '%s'; checking the gates of '%s' and the workflow metrics",
        loaded.agent, held.level if held else loaded.autonomy.level, to_level,
    )  # fmt: skip
    summary = evaluate_agent(contract, results, "promotion", gate_level=to_level, act=False)
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
        for g in workflow_gates(loaded, _measured(loaded, results))
    ]
    production_run = None
    if needs_production(loaded, to_level):
        state = evaluate_agent(
            contract,
            results,
            "promotion",
            gate_level=to_level,
            act=False,
            source="production",
            return_state=True,
        )
        if state.is_completed():
            production = state.result()
            production_run = production["run_id"]
            gates += [
                {
                    "metric": f"production.{m['metric']}",
                    "threshold": m["threshold"],
                    "verdict": m["verdict"],
                    "reason": m["reason"],
                }
                for m in production["metrics"]
                if m["verdict"] is not None
            ]
        else:
            gates.append(
                {
                    "metric": "production evidence",
                    "threshold": "a passing production run",
                    "verdict": str(Verdict.FAIL),
                    "reason": f"'{to_level}' needs production evidence as well as golden "
                    f"(evals.production.required_from), and there is none: {state.message}",
                }
            )
    return {
        "agent": loaded.agent,
        "contract": contract,
        "to_level": to_level,
        "level_before": entry.level,
        "version": entry.active_version,
        "evaluated_version": summary["version"],
        "run_id": summary["run_id"],
        "production_run_id": production_run,
        "gates": gates,
    }


def _measured(loaded: Contract, results: str) -> dict[str, Any] | None:
    """The scorecard's metrics (the evaluation just ingested the telemetry sources)."""
    if loaded.telemetry is None:
        return None
    return dict(measure(loaded, results).metrics())


def _refusal(loaded: Contract, evidence: dict[str, Any]) -> str | None:
    """Why the evidence cannot support this promotion, or ``None`` when every gate passes."""
    target, held = evidence["to_level"], evidence["level_before"]
    if level_rank(target) <= level_rank(held):
        return f"{loaded.agent} already holds {held}; promotion goes up the ladder"
    if evidence["evaluated_version"] != evidence["version"]:
        return (
            f"evaluated {evidence['evaluated_version']} but the agent serves "
            f"{evidence['version']}; promote what is served"
        )
    failing = [g for g in evidence["gates"] if g["verdict"] != str(Verdict.PASS)]
    # Whether the grounding judge agrees with the owner frames every gate it decides: first.
    failing.sort(key=lambda g: g["metric"] != "judge_agreement")
    if failing:
        return f"{len(failing)} gate(s) of '{target}' did not pass: " + "; ".join(
            f"{g['metric']} {g['verdict']} ({g['reason']})" for g in failing
        )
    return None


def _ask(evidence: dict[str, Any], timeout_s: int) -> tuple[Approval, datetime]:
    """The approver's answer and when it was given: suspend a deployment run, else pause."""
    context = FlowRunContext.get()
    assert context is not None
    assert context.flow_run is not None
    form = Approval.with_initial_data(description=form_description(evidence))
    if context.flow_run.deployment_id is not None:
        answer = suspend_flow_run(wait_for_input=form, timeout=timeout_s, key=APPROVAL_KEY)
    else:
        answer = pause_flow_run(
            wait_for_input=form, timeout=timeout_s, poll_interval=2, key=APPROVAL_KEY
        )
    return answer, _answered_at(context.flow_run.id, answer.metadata.key)


def _answered_at(flow_run_id: UUID, key: str) -> datetime:
    """When the server stored the answer (a suspended run may resume much later)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        stored = client.filter_flow_run_input(
            flow_run_id, key_prefix=key, limit=1, exclude_keys=set()
        )
    created = stored[0].created if stored else None
    return datetime.fromtimestamp(created.timestamp(), UTC) if created else datetime.now(UTC)


def _decision(
    evidence: dict[str, Any],
    kind: DecisionKind,
    reason: str,
    *,
    approver: str | None = None,
    level_after: str | None = None,
    at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> Decision:
    return Decision(
        agent=evidence["agent"],
        kind=kind,
        reason=reason,
        actor=approver or "promotion flow",
        run_id=evidence["run_id"],
        level_before=evidence["level_before"],
        level_after=level_after or evidence["level_before"],
        version_before=evidence["version"],
        version_after=evidence["version"],
        approved_by=approver,
        details={"to_level": evidence["to_level"], "gates": evidence["gates"], **(extra or {})},
        at=at or datetime.now(UTC),
    )


def _promote(
    loaded: Contract,
    evidence: dict[str, Any],
    ledger: Ledger,
    results: str,
    approver: str | None,
    why: str,
    *,
    at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any] | State:
    before, after = ledger.promote(
        loaded.agent, evidence["to_level"], evidence["version"], evidence["run_id"], approver
    )
    reason = f"{before.level} → {after.level} on run {evidence['run_id']}" + (
        f", approved by {approver}: {why}" if approver else f": {why}"
    )
    decision = _decision(
        evidence, "promote", reason, approver=approver, level_after=after.level, at=at, extra=extra
    )
    return _finish(loaded, decision, results)


def _notify(contract: Contract, decision: Decision) -> Decision:
    """Send the outcome to the contract's channels, as breaches are (at PROMOTION_SEVERITY)."""
    owner = contract.autonomy.escalation.owner
    payload = {
        "text": f"impactgate: {contract.agent} {_VERBS[decision.kind]}\n{decision.reason}\n"
        f"Owner: {owner}",
        "agent": contract.agent,
        "kind": decision.kind,
        "severity": PROMOTION_SEVERITY,
        "run_id": decision.run_id,
        "owner": owner,
        "to_level": decision.details["to_level"],
        "level_before": decision.level_before,
        "level_after": decision.level_after,
        "version_before": decision.version_before,
        "version_after": decision.version_after,
        "approved_by": decision.approved_by,
        "gates": decision.details["gates"],
    }
    channels = contract.autonomy.escalation.channels
    notes = deliver(channels, payload, PROMOTION_SEVERITY)
    if channels and not notes:
        notes = [
            f"not sent: no channel takes {PROMOTION_SEVERITY}-severity news "
            "(promotion outcomes are sent at that severity)"
        ]
    return replace(
        decision,
        notifications=[*decision.notifications, *notes],
        details={**decision.details, "severity": PROMOTION_SEVERITY, "payload": payload},
    )


def _finish(loaded: Contract, decision: Decision, results: str) -> dict[str, Any] | State:
    """Tell the channels, record and show the decision; fail the run unless it promoted."""
    outcome = {**publish(loaded, _notify(loaded, decision), [], results)}
    outcome["gates"] = decision.details["gates"]
    if decision.kind == "promote":
        return outcome
    return failed(decision.reason, outcome, name=_STATE_NAMES[decision.kind])
