"""The ``evaluate-agent`` flow: one agent's golden set through every suite.

Gated against the agent's current level, recorded, and acted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from evals.actions import breaches_from
from evals.contract import Contract, load_contract
from evals.dataset import Case
from evals.decisions import Decision
from evals.errors import display_path
from evals.gates import Verdict
from evals.report import run_summary_markdown
from evals.runs import (
    RunInfo,
    RunResult,
    Trigger,
    check_resumable,
    code_version,
    generate,
    generation_notes,
    new_run_id,
    open_unfinished_run,
    prepare,
    scoring_fingerprint,
    summarize,
)
from evals.scorers import BatchScorer, Score, run_scorer
from evals.store import (
    JournalHeader,
    OutputCache,
    ResultsStore,
    RunJournal,
    journal_dir,
    ledger_for,
)
from evals.targets import Output, Target
from flows._summary import run_summary
from flows.actions import escalate_flow, recover_flow, rollback_flow

__all__ = ["SCORING_BATCH", "ProgressFactory", "evaluate_agent", "reporting_progress"]

SCORING_BATCH = 200
"""Cases per scoring task: a few tasks per run, never one per case (ENV.md)."""


ProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
"""``factory(label, total)`` opens a progress display and yields ``advance(n)``."""

_progress_factory: ProgressFactory | None = None
PROGRESS_LOG_EVERY_S = 10.0
"""Without a progress display (a deployment, CI), a log line at most this often."""


@contextmanager
def reporting_progress(factory: ProgressFactory | None) -> Iterator[None]:
    """Show the progress of output generation with ``factory`` while the context is open.

    The CLI draws a bar (or periodic lines) this way when it runs flows in its own process;
    without a factory, progress goes to the flow's log.
    """
    global _progress_factory
    previous, _progress_factory = _progress_factory, factory
    try:
        yield
    finally:
        _progress_factory = previous


def _log_progress(label: str, total: int) -> Callable[[int], None]:
    logger = get_run_logger()
    started = last = time.monotonic()

    def progress(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or now - last >= PROGRESS_LOG_EVERY_S:
            rate = done / max(now - started, 1e-9)
            logger.info("%s: %d/%d cases answered (%.1f/s)", label, done, total, rate)
            last = now

    return progress


@task(name="generate-outputs", cache_policy=NONE)
def generate_outputs(
    target: Target,
    cases: Sequence[Case],
    cache: OutputCache | None = None,
    journal: RunJournal | None = None,
    label: str = "",
) -> list[Output]:
    """Produce (or reuse) one output per case, journaled as they arrive, with progress."""
    label = label or f"{target.kind} {target.version()}"
    factory = _progress_factory
    if factory is None:
        return generate(
            target, cases, _log_progress(label, len(cases)), cache=cache, journal=journal
        )
    with factory(label, len(cases)) as advance:
        shown = 0

        def progress(done: int) -> None:
            nonlocal shown
            advance(done - shown)
            shown = done

        return generate(target, cases, progress, cache=cache, journal=journal)


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
    info = result.info
    actor = f"evaluate-agent flow ({trigger} run)"
    if not breaches:
        # A clean run closes any open incident (a run with only inconclusive gates neither
        # breaches nor shows recovery, unless the contract escalates on inconclusive).
        if result.verdict != Verdict.PASS:
            return None
        outcome = recover_flow(
            contract_path, results, info.run_id, info.version.label, info.level, actor=actor
        )
    elif any(b.rollback for b in breaches):
        outcome = rollback_flow(
            contract_path, results, info.run_id, [b.to_dict() for b in breaches], actor=actor
        )
    else:
        outcome = escalate_flow(
            contract_path, results, info.run_id, info.version.label, info.level,
            [b.to_dict() for b in breaches], actor=actor,
        )  # fmt: skip
    if outcome is None:
        return None
    return Decision(
        **{k: v for k, v in outcome.items() if k != "at"}, at=datetime.fromisoformat(outcome["at"])
    )


@flow(name="evaluate-agent", log_prints=True)
def evaluate_agent(
    contract: str,
    results: str = "results",
    trigger: Trigger = "manual",
    resume: str | None = None,
    use_cache: bool = True,
    gate_level: str | None = None,
    act: bool = True,
) -> dict[str, Any]:
    """Evaluate the agent's active version against the gates of its current level.

    Args:
        contract: path to the contract YAML.
        results: results root (path or URI).
        trigger: why this run happens (nightly, promotion, ci, manual).
        resume: finish this unfinished run (same id, version and dataset), calling only
            the cases its journal lacks.
        use_cache: reuse outputs of the same version on unchanged cases.
        gate_level: hold the run against this level's gates instead (a promotion's target).
        act: escalate, roll back or recover on the verdict; off for a promotion's evaluation,
            which decides nothing by itself.

    Returns:
        The run summary (see ``flows._summary.run_summary``), with ``outputs`` counts.
    """
    logger = get_run_logger()
    started = datetime.now(UTC)
    loaded = load_contract(contract)
    plan = prepare(loaded)
    shown = display_path(loaded.source)
    journal = open_unfinished_run(results, resume) if resume else None
    declared = plan.target.version()
    ledger = ledger_for(results)
    entry, notes = ledger.sync(
        loaded.agent,
        declared.label,
        loaded.autonomy.level,
        loaded.autonomy.rollback.known_good,
        shown,
    )
    for note in notes:
        logger.info("%s: %s", loaded.agent, note)
    target = plan.target
    wanted = journal.header.version if journal is not None else entry.active_version
    if wanted != declared.label:
        if wanted in target.available_versions():
            target = target.at_version(wanted)
        elif journal is None:
            notes.append(
                f"active version {wanted} cannot be produced by this target; "
                f"evaluating {declared.label}"
            )
            logger.warning("%s: %s", loaded.agent, notes[-1])
    cases = list(plan.dataset.cases)
    version = target.version()
    target.preflight()  # a missing secret stops the run before it leaves a journal behind
    if journal is not None:
        check_resumable(journal, shown, version, plan.dataset.content_hash)
        run_id, started = journal.header.run_id, journal.header.started_at
        trigger = journal.header.trigger  # type: ignore[assignment]
    else:
        run_id = new_run_id(started)
        journal = RunJournal.start(
            journal_dir(results),
            JournalHeader(
                run_id=run_id,
                agent=loaded.agent,
                contract=str(loaded.source),
                version=version.label,
                version_hash=version.hash,
                dataset=loaded.evals.dataset,
                dataset_hash=plan.dataset.content_hash,
                trigger=trigger,
                started_at=started,
            ),
        )
    redactor = target.redactor()
    cache = OutputCache.default() if use_cache and target.cacheable else None
    try:
        with redactor.filtering_logs():
            logger.info(
                "%s: %s %s at level %s on %d cases (%s), run %s",
                loaded.agent, "resuming" if resume else "evaluating", version, entry.level,
                len(cases), display_path(plan.dataset.path), run_id,
            )  # fmt: skip
            if journal.resumed:
                logger.info(
                    "%s: %d of %d outputs come from the journal of run %s",
                    loaded.agent, journal.resumed, len(cases), run_id,
                )  # fmt: skip
            resumed = set(journal.outputs())  # before this session adds its own
            outputs = generate_outputs(target, cases, cache, journal, f"{loaded.agent} {version}")
            scores: dict[str, list[Score]] = {name: [] for name in plan.scorers}
            for start in range(0, len(cases), SCORING_BATCH):
                batch = slice(start, start + SCORING_BATCH)
                for name, scorer in plan.scorers.items():
                    scores[name].extend(score_batch(name, scorer, cases[batch], outputs[batch]))
            info = RunInfo(
                run_id=run_id,
                agent=loaded.agent,
                version=version,
                dataset=loaded.evals.dataset,
                dataset_hash=plan.dataset.content_hash,
                trigger=trigger,
                level=gate_level or entry.level,  # type: ignore[arg-type]
                started_at=started,
                finished_at=datetime.now(UTC),
                code_version=code_version(loaded.root),
                n_cached=sum(o.cached for o in outputs),
                n_resumed=journal.resumed,
                scoring_hash=scoring_fingerprint(loaded),
            )
            result = summarize(loaded, info, cases, outputs, scores, redactor)
            write_run(results, result)
            # Committed: from here on the run is in the store, and the journal must go, or a
            # later --resume would find a run that looks unfinished.
            journal.discard()
            generated = generation_notes(outputs, journal.resumed)
            for note in generated:
                logger.info("%s: %s", loaded.agent, note)
            _gate_artifact(result)
            logger.info("%s: run %s %s", loaded.agent, info.run_id, result.verdict)
            decision = _act(loaded, contract, results, result, trigger) if act else None
            if act and result.verdict == Verdict.PASS and version.label == entry.active_version:
                ledger.record_pass(loaded.agent, version.label, info.run_id)
            create_markdown_artifact(
                markdown=run_summary_markdown(results, info.run_id, contract=loaded),
                key=f"summary-{loaded.agent}",
                description=f"{loaded.agent} {info.version} at {info.level}: {result.verdict}",
            )
            after = ledger.get(loaded.agent)
            summary = run_summary(
                result, decision, notes + generated, after.level if after else entry.level
            )
    finally:
        journal.close()
        if cache is not None:
            cache.close()
    summary["outputs"] = {
        "called": sum(not o.cached and o.case_id not in resumed for o in outputs),
        "cached": info.n_cached,
        "resumed": info.n_resumed,
        "errors": sum(o.error is not None for o in outputs),
    }
    summary["resumed"] = bool(resume)
    return redactor.value(summary)  # type: ignore[no-any-return]
