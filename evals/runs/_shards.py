"""Pure shard functions: cases and outputs in, scores out, runnable in any worker process.

An orchestrator (a Prefect task runner: threads in the run's process, or Dask worker
processes on this or other machines) maps :func:`score_shard` over batches of a run's cases.
A shard carries only plain data: the contract's path, and the grounding judge's support
threshold when the run calibrated it on the owner's labels (the file does not say it), so it
can be sent to another process; the worker builds the contract's scorers once and keeps them (with the models they
load: embeddings, NER) for every later shard of the same contract and scoring settings.
Nothing here imports Prefect or Dask.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from evals.contract import Contract, load_contract
from evals.dataset import Case
from evals.runs._run import score, scoring_fingerprint
from evals.scorers import BatchScorer, Score, build_scorers
from evals.targets import Output

__all__ = ["at_support_threshold", "loaded_scorer_sets", "score_shard"]

_SCORERS: dict[tuple[str, str], dict[str, BatchScorer]] = {}
_LOCK = threading.Lock()


def at_support_threshold(contract: Contract, threshold: float) -> Contract:
    """The contract with its grounding judge at a calibrated support threshold."""
    grounding = contract.evals.grounding.model_copy(update={"support_threshold": threshold})
    evals = contract.evals.model_copy(update={"grounding": grounding})
    return contract.model_copy(update={"evals": evals})


def _scorers(contract_file: str, support_threshold: float | None) -> dict[str, BatchScorer]:
    """The contract's scorers, built once per process and scoring configuration."""
    contract = load_contract(Path(contract_file))
    if support_threshold is not None:
        contract = at_support_threshold(contract, support_threshold)
    key = (str(Path(contract_file).resolve()), scoring_fingerprint(contract))
    with _LOCK:
        built = _SCORERS.get(key)
        if built is None:
            built = _SCORERS[key] = build_scorers(contract)
        return built


def score_shard(
    contract_file: str,
    cases: Sequence[Case],
    outputs: Sequence[Output],
    support_threshold: float | None = None,
) -> dict[str, list[Score]]:
    """Every scorer of the contract over one batch of cases (any batch, in any order).

    Gives exactly what :meth:`evals.runs.RunSession.score` gives for the same batch of a
    golden run: scores by scorer name, one per case in order, crashes recorded as errors.
    ``support_threshold`` is the session's :attr:`~evals.runs.RunSession.support_threshold`
    (the grounding judge's, calibrated on the owner's labels), ``None`` when it has none.

    Raises:
        UserError: the contract cannot be loaded.
    """
    if len(cases) != len(outputs):
        raise ValueError(f"a shard needs one output per case: {len(cases)} != {len(outputs)}")
    return score(_scorers(contract_file, support_threshold), cases, outputs)


def loaded_scorer_sets() -> int:
    """How many scorer sets this process has built (one per contract and configuration)."""
    with _LOCK:
        return len(_SCORERS)
