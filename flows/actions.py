"""Escalation, rollback and recovery flows, called as subflows of an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from evals.actions import (
    PENDING_EVENT,
    Breach,
    escalate,
    incident_markdown,
    recover,
    rollback,
    wants,
)
from evals.contract import Contract, EventChannel, load_contract
from evals.store import Decision, ResultsStore, ledger_for

__all__ = ["escalate_flow", "publish", "recover_flow", "rollback_flow"]


def _emit_events(contract: Contract, decision: Decision) -> Decision:
    """Emit the Prefect events the contract's event channels ask for."""
    if PENDING_EVENT not in decision.notifications:
        return decision
    severity = str(decision.details.get("severity", "high"))
    notes = [n for n in decision.notifications if n != PENDING_EVENT]
    for channel in contract.autonomy.escalation.channels:
        if isinstance(channel, EventChannel) and wants(channel, severity):
            resource = channel.resource or f"impactgate.agent.{contract.agent}"
            event = emit_event(
                event=f"impactgate.{decision.kind}",
                resource={"prefect.resource.id": resource, "prefect.resource.name": contract.agent},
                payload={
                    k: v for k, v in (decision.details.get("payload") or {}).items() if k != "text"
                },
            )
            notes.append(
                f"event impactgate.{decision.kind} on {resource}: "
                + ("emitted" if event else "not emitted (no Prefect API)")
            )
    return replace(decision, notifications=notes)


def publish(
    contract: Contract, decision: Decision, breaches: Sequence[Breach], results: str
) -> dict[str, Any]:
    """Emit events, record the decision, show it in Prefect and the log."""
    decision = _emit_events(contract, decision)
    ResultsStore(results).write_decisions([decision])
    create_markdown_artifact(
        markdown=incident_markdown(contract, decision, breaches),
        key=f"incident-{contract.agent}"
        if decision.kind not in {"promote", "promotion_failed", "promotion_rejected"}
        else f"promotion-{contract.agent}",
        description=f"{contract.agent}: {decision.kind.replace('_', ' ')}",
    )
    logger = get_run_logger()
    log = logger.error if decision.kind == "rollback_refused" else logger.warning
    log("%s: %s — %s", contract.agent, decision.kind.replace("_", " "), decision.reason)
    for note in decision.notifications:
        logger.info("%s: %s", contract.agent, note)
    return decision.to_dict()


@flow(name="escalate", log_prints=True)
def escalate_flow(
    contract: str,
    results: str,
    run_id: str,
    version: str,
    level: str,
    breaches: Sequence[dict[str, Any]],
    actor: str = "evaluate-agent flow",
) -> dict[str, Any]:
    """Open or update the agent's incident, publish it and tell the owner when it is news."""
    loaded = load_contract(contract)
    items = [Breach(**b) for b in breaches]
    decision = escalate(
        loaded, ledger_for(results), items, run_id=run_id, version=version, level=level, actor=actor
    )
    return publish(loaded, decision, items, results)


@flow(name="rollback", log_prints=True)
def rollback_flow(
    contract: str,
    results: str,
    run_id: str | None,
    breaches: Sequence[dict[str, Any]],
    actor: str = "evaluate-agent flow",
) -> dict[str, Any]:
    """Re-pin the last good version, demote, run the rollback hook, record and tell the owner.

    When no version has ever passed, refuse loudly instead (``rollback_refused``).
    """
    loaded = load_contract(contract)
    items = [Breach(**b) for b in breaches]
    decision = rollback(loaded, ledger_for(results), items, run_id=run_id, actor=actor)
    return publish(loaded, decision, items, results)


@flow(name="recover", log_prints=True)
def recover_flow(
    contract: str,
    results: str,
    run_id: str,
    version: str,
    level: str,
    actor: str = "evaluate-agent flow",
    judged: list[str] | None = None,
) -> dict[str, Any] | None:
    """Close the agent's open incidents after a clean run, and say so.

    ``judged``: the metrics the run gated; incidents on other metrics stay open.
    """
    loaded = load_contract(contract)
    decision = recover(
        loaded,
        ledger_for(results),
        run_id=run_id,
        version=version,
        level=level,
        actor=actor,
        judged=judged,
    )
    return publish(loaded, decision, [], results) if decision is not None else None
