"""Escalation and rollback flows, called as subflows when a run breaches its contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from evals.actions import Breach, escalate, incident_markdown, rollback
from evals.contract import load_contract
from evals.decisions import Decision
from evals.store import ResultsStore, ledger_for

__all__ = ["escalate_flow", "rollback_flow"]


def _publish(
    contract_agent: str, decision: Decision, markdown: str, results: str
) -> dict[str, Any]:
    ResultsStore(results).write_decisions([decision])
    create_markdown_artifact(
        markdown=markdown,
        key=f"incident-{contract_agent}",
        description=f"{contract_agent}: {decision.kind.replace('_', ' ')}",
    )
    logger = get_run_logger()
    log = logger.error if decision.kind == "rollback_refused" else logger.warning
    log("%s: %s — %s", contract_agent, decision.kind.replace("_", " "), decision.reason)
    for note in decision.notifications:
        logger.info("%s: %s", contract_agent, note)
    return {**asdict(decision), "at": decision.at.isoformat()}


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
    """Record an incident, publish it in Prefect and tell the owner's channels."""
    loaded = load_contract(contract)
    items = [Breach(**b) for b in breaches]
    decision = escalate(loaded, items, run_id=run_id, version=version, level=level, actor=actor)
    return _publish(loaded.agent, decision, incident_markdown(loaded, decision, items), results)


@flow(name="rollback", log_prints=True)
def rollback_flow(
    contract: str,
    results: str,
    run_id: str | None,
    breaches: Sequence[dict[str, Any]],
    actor: str = "evaluate-agent flow",
) -> dict[str, Any]:
    """Re-pin the last good version, demote, record and tell the owner.

    When no version has ever passed, refuse loudly instead (``rollback_refused``).
    """
    loaded = load_contract(contract)
    items = [Breach(**b) for b in breaches]
    decision = rollback(loaded, ledger_for(results), items, run_id=run_id, actor=actor)
    return _publish(loaded.agent, decision, incident_markdown(loaded, decision, items), results)
