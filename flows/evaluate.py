"""The ``evaluate-agent`` flow: one agent's golden set through every suite.

Gated against the agent's current level, recorded, and acted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from evals.actions import breaches_from
from evals.contract import Contract, load_contract
from evals.dataset import Case
from evals.decisions import Decision
from evals.errors import display_path
from evals.gates import Verdict
from evals.runs import (
    RunInfo,
    RunResult,
    Trigger,
    code_version,
    generate,
    new_run_id,
    prepare,
    summarize,
)
from evals.scorers import BatchScorer, Score, run_scorer
from evals.store import ResultsStore, ledger_for
from evals.targets import Output, Target
from flows._summary import run_summary
from flows.actions import escalate_flow, rollback_flow

__all__ = ["SCORING_BATCH", "evaluate_agent"]

SCORING_BATCH = 200
"""Cases per scoring task: a few tasks per run, never one per case (ENV.md)."""


@task(name="generate-outputs", cache_policy=NONE)
def generate_outputs(target: Target, cases: Sequence[Case]) -> list[Output]:
    """Produce (or replay) one output per case, logging progress on long runs."""
    logger = get_run_logger()
    step = max(1, len(cases) // 10)

    def progress(done: int) -> None:
        if len(cases) >= 100 and (done % step == 0 or done == len(cases)):
            logger.info("%d/%d cases answered", done, len(cases))

    return generate(target, cases, progress)


@task(name="score-batch", cache_policy=NONE)
def score_batch(
    name: str, scorer: BatchScorer, cases: Sequence[Case], outputs: Sequence[Output]
) -> list[Score]:
    """One scorer over one batch of cases."""
    return run_scorer(name, scorer, cases, outputs)


@task(name="write-run", cache_policy=NONE)
def write_run(results: str, result: RunResult) -> None:
    """Commit the run's samples and runs rows."""
    ResultsStore(results).write_run(result)


def _gate_artifact(result: RunResult) -> None:
    rows = [
        {
            "metric": g.metric,
            "value": None
            if g.observed is None or g.observed.value is None
            else round(g.observed.value, 4),
            "threshold": str(g.threshold),
            "verdict": str(g.verdict),
            "reason": g.reason,
        }
        for g in result.gates
    ]
    create_table_artifact(
        table=rows,
        key=f"gates-{result.info.agent}",
        description=f"{result.info.agent} {result.info.version} at {result.info.level}: {result.verdict}",
    )


def _act(
    contract: Contract, contract_path: str, results: str, result: RunResult, trigger: str
) -> Decision | None:
    escalation = contract.autonomy.escalation
    breaches = breaches_from(result.gates, escalation.on_inconclusive)
    if not breaches:
        return None
    info = result.info
    actor = f"evaluate-agent flow ({trigger} run)"
    payload = [b.to_dict() for b in breaches]
    if any(b.rollback for b in breaches):
        outcome = rollback_flow(contract_path, results, info.run_id, payload, actor=actor)
    else:
        outcome = escalate_flow(
            contract_path,
            results,
            info.run_id,
            info.version.label,
            info.level,
            payload,
            actor=actor,
        )
    return Decision(
        **{k: v for k, v in outcome.items() if k != "at"}, at=datetime.fromisoformat(outcome["at"])
    )


@flow(name="evaluate-agent", log_prints=True)
def evaluate_agent(
    contract: str, results: str = "results", trigger: Trigger = "manual"
) -> dict[str, Any]:
    """Evaluate the agent's active version against the gates of its current level.

    Args:
        contract: path to the contract YAML.
        results: results root (path or URI).
        trigger: why this run happens (nightly, promotion, ci, manual).

    Returns:
        The run summary (see ``flows._summary.run_summary``).
    """
    logger = get_run_logger()
    started = datetime.now(UTC)
    loaded = load_contract(contract)
    plan = prepare(loaded)
    declared = plan.target.version()
    ledger = ledger_for(results)
    entry, notes = ledger.sync(
        loaded.agent,
        declared.label,
        loaded.autonomy.level,
        loaded.autonomy.rollback.known_good,
        display_path(loaded.source),
    )
    for note in notes:
        logger.info("%s: %s", loaded.agent, note)
    target = plan.target
    if entry.active_version != declared.label:
        if entry.active_version in target.available_versions():
            target = target.at_version(entry.active_version)
        else:
            notes.append(
                f"active version {entry.active_version} cannot be produced by this target; "
                f"evaluating {declared.label}"
            )
            logger.warning("%s: %s", loaded.agent, notes[-1])
    cases = list(plan.dataset.cases)
    version = target.version()
    logger.info(
        "%s: evaluating %s at level %s on %d cases (%s)",
        loaded.agent, version, entry.level, len(cases), display_path(plan.dataset.path),
    )  # fmt: skip
    outputs = generate_outputs(target, cases)
    scores: dict[str, list[Score]] = {name: [] for name in plan.scorers}
    for start in range(0, len(cases), SCORING_BATCH):
        batch = slice(start, start + SCORING_BATCH)
        for name, scorer in plan.scorers.items():
            scores[name].extend(score_batch(name, scorer, cases[batch], outputs[batch]))
    info = RunInfo(
        run_id=new_run_id(started),
        agent=loaded.agent,
        version=version,
        dataset=loaded.evals.dataset,
        dataset_hash=plan.dataset.content_hash,
        trigger=trigger,
        level=entry.level,
        started_at=started,
        finished_at=datetime.now(UTC),
        code_version=code_version(loaded.root),
    )
    result = summarize(loaded, info, cases, outputs, scores)
    write_run(results, result)
    _gate_artifact(result)
    logger.info("%s: run %s %s", loaded.agent, info.run_id, result.verdict)
    decision = _act(loaded, contract, results, result, trigger)
    if decision is None and result.verdict == Verdict.PASS:
        ledger.record_pass(loaded.agent, version.label, info.run_id)
    after = ledger.get(loaded.agent)
    return run_summary(result, decision, notes, after.level if after else entry.level)
