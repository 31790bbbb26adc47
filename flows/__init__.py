"""Prefect flows that wire the engine, and the ``impactgate`` CLI.

Flows stay thin: load, fan out, call the engine, write, decide, act. Importing this package is
cheap; Prefect is imported when a flow is first used, so commands that need no evaluation
(``status``, ``validate``) start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from evals._env import apply_offline_defaults

apply_offline_defaults()

__all__ = [
    "FlowFailed",
    "ci_gate",
    "escalate_flow",
    "evaluate_agent",
    "local_prefect",
    "nightly",
    "promotion",
    "recover_flow",
    "rollback_flow",
    "run_outcome",
]

_WHERE = {
    "escalate_flow": "flows.actions",
    "rollback_flow": "flows.actions",
    "recover_flow": "flows.actions",
    "promotion": "flows.promotion",
    "ci_gate": "flows.ci_gate",
    "evaluate_agent": "flows.evaluate",
    "nightly": "flows.nightly_suite",
    "local_prefect": "flows._prefect",
    "FlowFailed": "flows._states",
    "run_outcome": "flows._states",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'flows' has no attribute {name!r}")
