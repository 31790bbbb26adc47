"""What a run's verdict calls for, decided once, and carried out by whoever runs it.

:func:`choose_action` is the one place that maps gates to an action; :func:`perform` carries
it out with the engine (a notebook, a test, the CLI). A flow carries the same action out as a
subflow, which calls the same engine functions, so the decision is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from evals.actions._actions import escalate, recover, rollback
from evals.actions._breach import Breach, breaches_from
from evals.contract import LEVELS, Contract, Level, level_rank
from evals.gates import GateResult, Verdict, overall_verdict
from evals.store import Decision, Incident, Ledger

__all__ = ["Action", "ActionKind", "choose_action", "perform"]

ActionKind = Literal["none", "recover", "escalate", "rollback"]


@dataclass(frozen=True)
class Action:
    """What a run calls for, with everything needed to carry it out."""

    kind: ActionKind
    run_id: str
    version: str
    level: str
    """The level the run was gated at."""
    breaches: tuple[Breach, ...] = field(default_factory=tuple)
    why: str = ""
    """Why this action (or why none), in words."""
    judged: tuple[str, ...] = ()
    """The metrics the run gated: a recovery closes only incidents on these."""


def choose_action(
    contract: Contract,
    gates: Sequence[GateResult],
    open_incidents: Sequence[Incident],
    *,
    run_id: str,
    version: str,
    level: str,
) -> Action:
    """The action a run's gates call for.

    A breach of a rollback metric rolls back; any other breach escalates (inconclusive gates
    count when the contract escalates on them). A run that passes every gate recovers the
    open incidents it resolves, those opened at its level or below on metrics it judged (a
    golden run leaves an incident on a production-only metric to the production run); with
    none to resolve, nothing happens. A run with only inconclusive gates neither breaches nor
    recovers.
    """
    breaches = tuple(breaches_from(gates, contract.autonomy.escalation.on_inconclusive))
    judged = tuple(sorted({g.metric for g in gates}))

    def action(kind: ActionKind, why: str) -> Action:
        return Action(kind, run_id, version, level, breaches, why, judged)

    if any(b.rollback for b in breaches):
        return action("rollback", "a rollback metric failed")
    if breaches:
        return action("escalate", "a gate breached")
    if overall_verdict(gates) != Verdict.PASS:
        return action("none", "inconclusive: neither a breach nor a recovery")
    rank = level_rank(level) if level in LEVELS else -1
    resolved = [
        i
        for i in open_incidents
        if level_rank(i.level) <= rank  # type: ignore[arg-type]
        and set(i.metrics) <= set(judged)
    ]
    if not resolved:
        return action("none", "every gate passes; no open incident to close")
    return action(
        "recover", "every gate passes; closes incident " + ", ".join(f"#{i.id}" for i in resolved)
    )


def perform(contract: Contract, ledger: Ledger, action: Action, actor: str) -> Decision | None:
    """Carry out an action with the engine; the decision to record (``None`` for none)."""
    level: Level = action.level  # type: ignore[assignment]
    if action.kind == "rollback":
        return rollback(contract, ledger, action.breaches, run_id=action.run_id, actor=actor)
    if action.kind == "escalate":
        return escalate(
            contract,
            ledger,
            action.breaches,
            run_id=action.run_id,
            version=action.version,
            level=level,
            actor=actor,
        )
    if action.kind == "recover":
        return recover(
            contract,
            ledger,
            run_id=action.run_id,
            version=action.version,
            level=level,
            actor=actor,
            judged=action.judged,
        )
    return None
