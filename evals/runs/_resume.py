"""Resuming a run that did not commit: find its journal, and check it still fits."""

from __future__ import annotations

from evals.errors import UserError, did_you_mean, display_path
from evals.store import ResultsStore, RunJournal, journal_dir, valid_run_id
from evals.targets import AgentVersion

__all__ = ["check_resumable", "open_unfinished_run"]

_FIELD = "--resume"


def open_unfinished_run(results: str, run_id: str) -> RunJournal:
    """The journal of run ``run_id``, which must exist and must not have committed.

    Raises:
        UserError: the id is malformed, unknown, or names a run that already committed.
    """
    folder = journal_dir(results)
    if not valid_run_id(run_id):
        raise UserError.single(results, _FIELD, f"'{run_id}' is not a run id")
    committed = ResultsStore(results).run(run_id)
    if committed is not None:
        raise UserError.single(
            results,
            _FIELD,
            f"run {run_id} ({committed.agent} {committed.version}) already committed its results; "
            "there is nothing to resume. Run without --resume to evaluate again (unchanged "
            "cases come from the output cache)",
        )
    try:
        return RunJournal.open(folder, run_id)
    except FileNotFoundError:
        unfinished = [h.run_id for h in RunJournal.in_progress(folder)]
        hint = (
            f"; unfinished runs: {', '.join(unfinished[-5:])}{did_you_mean(run_id, unfinished)}"
            if unfinished
            else "; no run is unfinished there"
        )
        raise UserError.single(
            results,
            _FIELD,
            f"no unfinished run {run_id} under {display_path(folder)}{hint}",
        ) from None


def check_resumable(
    journal: RunJournal, contract_file: str, version: AgentVersion, dataset_hash: str
) -> None:
    """A resumed run must evaluate what it started with: same version, same dataset.

    Raises:
        UserError: the agent, its version or the dataset changed since the run started.
    """
    header = journal.header
    if header.agent != version.agent:
        raise UserError.single(
            contract_file,
            "agent",
            f"run {header.run_id} evaluated agent '{header.agent}', not '{version.agent}'",
        )
    if header.version_hash != version.hash:
        raise UserError.single(
            contract_file,
            "evals.target",
            f"run {header.run_id} was evaluating version {header.version} "
            f"({header.version_hash[:8]}); the contract now produces {version} — its prompt, "
            "model, params or code changed. Start a new run instead (outputs of unchanged "
            "versions come from the output cache)",
        )
    if header.dataset_hash != dataset_hash:
        raise UserError.single(
            contract_file,
            "evals.dataset",
            f"{header.dataset} changed since run {header.run_id} started; a run evaluates one "
            "dataset version, so start a new run instead",
        )
