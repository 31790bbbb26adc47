"""Targets: how outputs are produced for golden cases, and which version produced them."""

from __future__ import annotations

from evals.contract import Contract
from evals.dataset import Dataset
from evals.targets._base import (
    AgentVersion,
    OnOutput,
    Output,
    Progress,
    Target,
    case_fingerprint,
    config_hash,
)
from evals.targets._http import HttpTarget
from evals.targets._litellm import LiteLLMTarget, PromptTemplate
from evals.targets._live import LiveTarget, run_coroutine
from evals.targets._python import PythonTarget
from evals.targets._replay import ReplayTarget
from evals.targets._secrets import Redactor

__all__ = [
    "AgentVersion",
    "HttpTarget",
    "LiteLLMTarget",
    "LiveTarget",
    "OnOutput",
    "Output",
    "Progress",
    "PromptTemplate",
    "PythonTarget",
    "Redactor",
    "ReplayTarget",
    "Target",
    "build_target",
    "case_fingerprint",
    "config_hash",
    "run_coroutine",
]


def build_target(contract: Contract, dataset: Dataset) -> Target:
    """The target a contract configures, producing the version the contract declares.

    Raises:
        UserError: the target cannot be built (missing recordings, unimportable function,
            missing or broken prompt template...).
    """
    spec = contract.evals.target
    if spec.kind == "replay":
        return ReplayTarget(contract, spec, dataset)
    if spec.kind == "litellm":
        return LiteLLMTarget(contract, spec)
    if spec.kind == "http":
        return HttpTarget(contract, spec)
    return PythonTarget(contract, spec)
