"""Targets: how outputs are produced for golden cases, and which version produced them."""

from __future__ import annotations

from evals.contract import Contract
from evals.dataset import Dataset
from evals.targets._base import AgentVersion, Output, Progress, Target, config_hash
from evals.targets._python import PythonTarget
from evals.targets._replay import ReplayTarget

__all__ = [
    "AgentVersion",
    "Output",
    "Progress",
    "PythonTarget",
    "ReplayTarget",
    "Target",
    "build_target",
    "config_hash",
]


def build_target(contract: Contract, dataset: Dataset) -> Target:
    """The target a contract configures, producing the version the contract declares.

    Raises:
        UserError: the target cannot be built (missing recordings, unimportable function...).
    """
    spec = contract.evals.target
    if spec.kind == "replay":
        return ReplayTarget(contract, spec, dataset)
    return PythonTarget(contract, spec)
