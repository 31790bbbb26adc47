"""impactgate's engine: contracts, datasets, targets, scorers, metrics, gates, storage, actions.

A plain library with no Prefect import, usable from a notebook, pytest or any orchestrator::

    from evals import load_contract, evaluate
    result = evaluate(load_contract("policies/billing-assistant.yaml"))
    for gate in result.gates:
        print(gate.metric, gate.verdict, gate.reason)
"""

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
