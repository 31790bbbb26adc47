"""impactgate's engine: contracts, datasets, targets, scorers, metrics, gates, storage, actions.

A plain library with no Prefect import, usable from a notebook, pytest or any orchestrator::

    from evals import load_contract, evaluate
    result = evaluate(load_contract("policies/billing-assistant.yaml"))
    for gate in result.gates:
        print(gate.metric, gate.verdict, gate.reason)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evals._lazy import lazy_names

if TYPE_CHECKING:
    from evals.actions import Breach, breaches_from, escalate, incident_markdown, rollback
    from evals.contract import LEVELS, Contract, Level, Threshold, discover_contracts, load_contract
    from evals.dataset import Case, Dataset, load_dataset
    from evals.errors import Problem, UserError
    from evals.gates import GateResult, Verdict, evaluate_gates, judge_gate
    from evals.metrics import METRICS, MetricSpec, MetricValue, aggregate
    from evals.readiness import AgentState, Readiness, readiness
    from evals.runs import RunOutcome, RunResult, RunSession, Trigger, evaluate
    from evals.scorers import Score, scorer
    from evals.store import (
        Decision,
        Ledger,
        LedgerEntry,
        NoGoodVersion,
        ResultsStore,
        RunRecord,
        SampleRecord,
    )
    from evals.targets import AgentVersion, Output, Target, build_target

__all__ = [
    "LEVELS",
    "METRICS",
    "AgentState",
    "AgentVersion",
    "Breach",
    "Case",
    "Contract",
    "Dataset",
    "Decision",
    "GateResult",
    "Ledger",
    "LedgerEntry",
    "Level",
    "MetricSpec",
    "MetricValue",
    "NoGoodVersion",
    "Output",
    "Problem",
    "Readiness",
    "ResultsStore",
    "RunOutcome",
    "RunRecord",
    "RunResult",
    "RunSession",
    "SampleRecord",
    "Score",
    "Target",
    "Threshold",
    "Trigger",
    "UserError",
    "Verdict",
    "aggregate",
    "breaches_from",
    "build_target",
    "discover_contracts",
    "escalate",
    "evaluate",
    "evaluate_gates",
    "incident_markdown",
    "judge_gate",
    "load_contract",
    "load_dataset",
    "readiness",
    "rollback",
    "scorer",
]

# Importing the package is cheap (the CLI's --version and --help import it); each name loads
# its module on first use.
_WHERE = {
    "LEVELS": "evals.contract",
    "METRICS": "evals.metrics",
    "AgentState": "evals.readiness",
    "AgentVersion": "evals.targets",
    "Breach": "evals.actions",
    "Case": "evals.dataset",
    "Contract": "evals.contract",
    "Dataset": "evals.dataset",
    "Decision": "evals.store",
    "GateResult": "evals.gates",
    "Ledger": "evals.store",
    "LedgerEntry": "evals.store",
    "Level": "evals.contract",
    "MetricSpec": "evals.metrics",
    "MetricValue": "evals.metrics",
    "NoGoodVersion": "evals.store",
    "Output": "evals.targets",
    "Problem": "evals.errors",
    "Readiness": "evals.readiness",
    "ResultsStore": "evals.store",
    "RunOutcome": "evals.runs",
    "RunRecord": "evals.store",
    "RunResult": "evals.runs",
    "RunSession": "evals.runs",
    "SampleRecord": "evals.store",
    "Score": "evals.scorers",
    "Target": "evals.targets",
    "Threshold": "evals.contract",
    "Trigger": "evals.runs",
    "UserError": "evals.errors",
    "Verdict": "evals.gates",
    "aggregate": "evals.metrics",
    "breaches_from": "evals.actions",
    "build_target": "evals.targets",
    "discover_contracts": "evals.contract",
    "escalate": "evals.actions",
    "evaluate": "evals.runs",
    "evaluate_gates": "evals.gates",
    "incident_markdown": "evals.actions",
    "judge_gate": "evals.gates",
    "load_contract": "evals.contract",
    "load_dataset": "evals.dataset",
    "readiness": "evals.readiness",
    "rollback": "evals.actions",
    "scorer": "evals.scorers",
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
