"""The ``evaluate-agent`` flow: one agent's golden set through every suite.

A thin wrapper around the engine's :class:`evals.runs.RunSession`: the session decides the
version, the level, the journal, the cache, the record and the action; the flow adds tasks,
artifacts and the action subflows, so the whole chain shows as one tree in Prefect.
"""

from __future__ import annotations

import itertools
import pickle
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from itertools import islice
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from evals.actions import Action
from evals.dataset import BATCH, Case
from evals.report import run_summary_markdown
from evals.runs import (
    GenerationShard,
    Produce,
    RunResult,
    RunSession,
    Submit,
    Trigger,
    generate_shard,
    score_shard,
)
from evals.scorers import Score
from evals.store import Decision, Source
from evals.targets import AgentVersion, Output
from flows._runners import parallel_slots, shard_runner
from flows.actions import escalate_flow, recover_flow, rollback_flow

__all__ = [
    "GENERATION_BATCH",
    "SCORING_BATCH",
    "Batch",
    "ProgressFactory",
    "batch_bounds",
    "evaluate_agent",
    "reporting_progress",
    "submit_batches",
]

SCORING_BATCH = 1000
"""Most cases in one scoring task: a few tasks per run, never one per case (ENV.md).

Each task costs about 0.2 CPU s besides the scoring, whatever its size: a Dask worker about
0.15 s (Prefect's task engine rebuilds the run's settings and API clients in the worker, the
batch and its scores are pickled both ways), the flow's process and the Prefect server the
rest (``benchmarks/RESULTS.md``, "Fan-out", and ``docs/deploy.md``). That is about a twentieth
of what 1,000 policy-scored cases cost, and a 100,000-case run is 100 tasks. Batches of 500
paid it twice as often: on the fan-out benchmark's 4,000 cases, 2 Dask workers were 1.67× and
1.72× as fast as the in-process runner with them (``benchmarks/fanout.py --batch 500``),
against 1.75× and 1.77× with 1,000 (two runs each, the same session; the recorded run: 1.74×).
"""

GENERATION_BATCH = 500
"""Cases per generation task on a Dask or Ray runner: a batch is journaled when it comes back, so
an interrupted run loses at most this many cases per worker; large enough that the few calls
left at a batch's end, when its worker is not full, cost a few percent at most."""


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


@contextmanager
def _generation_progress(session: RunSession) -> Iterator[Callable[[int], None]]:
    """The progress hook of a run's generation: the CLI's display, else the flow's log."""
    label, total = session.label, len(session.plan.dataset)
    factory = _progress_factory
    if factory is None:
        yield _log_progress(label, total)
        return
    with factory(label, total) as advance:
        shown = 0

        def progress(done: int) -> None:
            nonlocal shown
            advance(done - shown)
            shown = done

        yield progress


@task(name="generate-outputs", cache_policy=NONE)
def generate_outputs(session: RunSession) -> list[Output]:
    """Produce (or reuse) one output per case, journaled as they arrive, with progress.

    A live target with ``processes`` above one calls from that many worker processes of
    this machine (``RunSession.in_processes``).
    """
    with _generation_progress(session) as progress:
        return session.generate(progress=progress)


@task(name="generate-batch", cache_policy=NONE)
def generate_batch(
    contract: str,
    version: AgentVersion,
    cases: Sequence[Case],
    concurrency: int,
    requests_per_minute: int | None,
) -> list[Output]:
    """Call the target for one batch of cases, in whichever worker the task runner picks.

    Only plain data travels: the worker builds the contract's target once, reads its
    secrets from its own environment, and calls with this batch's share of the limits.
    """
    return generate_shard(
        contract,
        version,
        cases,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
    )


def _producer(session: RunSession, runner: Any) -> Produce | None:
    """How the cases are called: spread over ``processes`` workers when a live target asks.

    On a Dask or Ray task runner, batches of :data:`GENERATION_BATCH` cases go to its workers
    as tasks, at most ``processes`` at a time, each with that share of the contract's
    concurrency, and each batch is journaled as it comes back. Threads would share one
    interpreter lock, so with the thread runner the session's own worker processes call
    instead (:meth:`RunSession.in_processes`). ``None``: the target calls in this process.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    if session.processes <= 1:
        return None
    if isinstance(runner, ThreadPoolTaskRunner):
        return session.in_processes
    version = session.target.version()

    def produce(
        cases: Sequence[Case],
        progress: Callable[[int], None] | None,
        on_output: Callable[[Output], None] | None,
    ) -> list[Output]:
        shards = iter(session.shards(cases, GENERATION_BATCH))

        def submit(shard: GenerationShard) -> Any:
            return runner.submit(
                generate_batch,
                parameters={
                    "contract": session.shard_contract,
                    "version": version,
                    "cases": list(shard.cases),
                    "concurrency": shard.concurrency,
                    "requests_per_minute": shard.requests_per_minute,
                },
            )

        in_flight = deque(submit(shard) for shard in islice(shards, session.processes))
        produced: dict[str, Output] = {}
        while in_flight:
            outputs: list[Output] = in_flight.popleft().result()
            following = next(shards, None)
            if following is not None:  # keep every worker busy while this batch is saved
                in_flight.append(submit(following))
            for output in outputs:
                produced[output.case_id] = output
                if on_output is not None:
                    on_output(output)
            if progress is not None:
                progress(len(produced))
        return [produced[case.id] for case in cases]

    return produce


class Batch:
    """One scoring task's cases and outputs, as a single value nobody walks or decodes on the way.

    Prefect walks every list, dict, dataclass and pydantic model among a task's arguments
    looking for futures to wait for (in the flow's process, twice with Dask, and again in the
    worker), and Dask walks lists and tuples; cases are pydantic models, so a bare list of
    them cost each task several tenths of a second of CPU in all (``docs/deploy.md``). Prefect's
    own ``quote``/``opaque`` do not survive pickling to a Dask worker.

    A batch pickles as one opaque payload and is decoded on first use, in the worker that
    scores it: a Dask scheduler unpickles every task it is given and pickles it again for
    its worker, and for a local cluster that scheduler runs in the flow's own process,
    where decoding and re-encoding every case would take CPU from the workers.
    """

    __slots__ = ("_cases", "_outputs", "_payload", "_token")

    def __init__(self, cases: Sequence[Case], outputs: Sequence[Output]) -> None:
        self._cases: list[Case] | None = list(cases)
        self._outputs: list[Output] | None = list(outputs)
        self._payload: bytes | None = None
        self._token = uuid.uuid4().hex

    @property
    def cases(self) -> list[Case]:
        """The batch's cases, in order."""
        return self._decoded()[0]

    @property
    def outputs(self) -> list[Output]:
        """The target's outputs for :attr:`cases`, in the same order."""
        return self._decoded()[1]

    def _decoded(self) -> tuple[list[Case], list[Output]]:
        if self._cases is None or self._outputs is None:
            assert self._payload is not None
            self._cases, self._outputs = pickle.loads(self._payload)
            self._payload = None
        return self._cases, self._outputs

    def __len__(self) -> int:
        return len(self.cases)

    def __reduce__(self) -> tuple[Callable[[str, bytes], Batch], tuple[str, bytes]]:
        payload = self._payload
        if payload is None:
            payload = pickle.dumps(self._decoded(), protocol=pickle.HIGHEST_PROTOCOL)
        return _encoded_batch, (self._token, payload)

    def __dask_tokenize__(self) -> str:
        """Dask's key for the task: unique per batch, without pickling the batch to hash it."""
        return self._token


def _encoded_batch(token: str, payload: bytes) -> Batch:
    """A batch as :meth:`Batch.__reduce__` sent it: still encoded until it is used."""
    batch = Batch.__new__(Batch)
    batch._cases = batch._outputs = None
    batch._payload, batch._token = payload, token
    return batch


@task(name="score-batch", cache_policy=NONE)
def score_batch(
    contract: str, batch: Batch, support_threshold: float | None = None
) -> dict[str, list[Score]]:
    """Every scorer over one batch of cases, in whichever worker the task runner picks.

    Only plain data travels (the contract's path, the calibrated support threshold if the
    run has one): the worker builds the contract's scorers (and loads their models) once and
    reuses them for every later batch.
    """
    return score_shard(contract, batch.cases, batch.outputs, support_threshold)


@task(name="score-in-session", cache_policy=NONE)
def score_in_session(session: RunSession, outputs: list[Output]) -> dict[str, list[Score]]:
    """Every case scored by the session itself (a production run reuses stored scores)."""
    return session.score(session.cases, outputs)


def batch_bounds(cases: int, slots: int = 1) -> list[tuple[int, int]]:
    """Start and end of each scoring batch: as few as ``SCORING_BATCH`` allows, equal in size.

    The number of batches is rounded up to a multiple of ``slots`` (a Dask cluster's worker
    threads) so every worker gets the same share: 4,000 cases on 2 workers are 4 batches of
    1,000, 2,400 cases 4 of 600 (not 1,000, 1,000, 400, which leaves a worker idle at the end).
    """
    if cases <= 0:
        return []
    count = -(-cases // SCORING_BATCH)
    count = min(cases, -(-count // slots) * slots)
    edges = [cases * i // count for i in range(count + 1)]
    return list(itertools.pairwise(edges))


def _batches(cases: Sequence[Case], outputs: Sequence[Output], slots: int) -> list[Batch]:
    """The scoring tasks' batches of ``cases`` (:func:`batch_bounds`), in order."""
    return [
        Batch(cases[start:end], outputs[start:end])
        for start, end in batch_bounds(len(cases), slots)
    ]


def _merged(parts: Iterable[dict[str, list[Score]]]) -> dict[str, list[Score]]:
    """Batches' scores as one batch's, in case order."""
    scores: dict[str, list[Score]] = {}
    for part in parts:
        for name, values in part.items():
            scores.setdefault(name, []).extend(values)
    return scores


def submit_batches(
    runner: Any,
    contract_file: str,
    cases: Sequence[Case],
    outputs: Sequence[Output],
    support_threshold: float | None = None,
) -> list[Any]:
    """Submit every batch of cases to ``runner`` at once (:func:`batch_bounds`), futures in order."""
    return [
        runner.submit(
            score_batch,
            parameters={
                "contract": contract_file,
                "batch": batch,
                "support_threshold": support_threshold,
            },
        )
        for batch in _batches(cases, outputs, parallel_slots(runner))
    ]


def _scorer(session: RunSession, runner: Any) -> Submit:
    """Scoring of a batch as ``score-batch`` tasks on ``runner``, scores in case order.

    On Dask or Ray every share is submitted at once and the workers score them in parallel while
    the flow generates the next batch; what is returned waits for them. In this process (the
    thread runner) the shares are scored as they are submitted, in the flow's thread.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    def submit(
        cases: Sequence[Case], outputs: Sequence[Output]
    ) -> Callable[[], dict[str, list[Score]]]:
        if isinstance(runner, ThreadPoolTaskRunner):
            # In this process the tasks run one after another in the flow's own thread:
            # CPU-bound scoring holds the GIL whichever thread runs it, and every thread
            # that runs the models grows the process by native memory of its own.
            done = _merged(
                score_batch(session.contract_file, batch, session.support_threshold)
                for batch in _batches(cases, outputs, 1)
            )
            return lambda: done
        futures = submit_batches(
            runner, session.contract_file, cases, outputs, session.support_threshold
        )

        return lambda: _merged(future.result() for future in futures)

    return submit


def _streamed(session: RunSession, task_runner: str | None) -> RunResult:
    """A golden run streamed through the task runner: batches generated, scored, stored.

    Each batch of the dataset is scored as tasks (``score-batch``, at most
    :data:`SCORING_BATCH` cases each, as many as the runner has workers) while the next
    batch is generated, so the workers keep busy and the run's memory stays that of two
    batches whatever the dataset's size (:meth:`RunSession.stream`).
    """
    with shard_runner(task_runner) as runner, _generation_progress(session) as progress:
        return session.stream(
            progress,
            produce=_producer(session, runner),
            submit=_scorer(session, runner),
            ahead=1,
            batch=max(BATCH, SCORING_BATCH * parallel_slots(runner)),
        )


@task(name="commit-run", cache_policy=NONE)
def commit_run(
    session: RunSession, outputs: Sequence[Output], scores: dict[str, list[Score]]
) -> RunResult:
    """Hold the scores against the gates and commit the run to the store."""
    return session.commit(outputs, scores)


def _gate_artifact(result: RunResult) -> None:
    record = result.record
    create_table_artifact(
        table=[
            {
                "metric": m.metric,
                "value": m.value_text,
                "interval": m.interval_text,
                "threshold": m.threshold_text,
                "verdict": m.verdict,
                "reason": m.reason,
            }
            for m in record.gated
        ],
        key=f"gates-{record.agent}" + ("-production" if record.source == "production" else ""),
        description=f"{record.agent} {record.version} at {record.level}: {record.verdict}",
    )


def _subflows(session: RunSession, actor: str) -> Callable[[Action], Decision | None]:
    """Carry an action out as a subflow, so it shows in the run's tree."""
    contract, results = session.contract_file, session.results
    assert results is not None

    def perform(action: Action) -> Decision | None:
        breaches = [b.to_dict() for b in action.breaches]
        outcome: dict[str, Any] | None
        if action.kind == "rollback":
            outcome = rollback_flow(contract, results, action.run_id, breaches, actor=actor)
        elif action.kind == "escalate":
            outcome = escalate_flow(
                contract, results, action.run_id, action.version, action.level, breaches,
                actor=actor,
            )  # fmt: skip
        else:
            outcome = recover_flow(
                contract, results, action.run_id, action.version, action.level, actor=actor,
                judged=list(action.judged),
            )  # fmt: skip
        return Decision.from_dict(outcome) if outcome is not None else None

    return perform


@flow(name="evaluate-agent", log_prints=True)
def evaluate_agent(
    contract: str,
    results: str = "results",
    trigger: Trigger = "manual",
    resume: str | None = None,
    use_cache: bool = True,
    gate_level: str | None = None,
    act: bool = True,
    task_runner: str | None = None,
    source: Source = "golden",
    until: datetime | None = None,
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
        task_runner: where scoring batches run: ``thread`` (default), ``dask`` or ``ray``
            (a local cluster), a Dask scheduler's or a Ray cluster's address (default
            ``$IMPACTGATE_TASK_RUNNER``); a ``nightly`` run shares its own runner with every
            agent instead.
        source: ``golden`` (the dataset through the target) or ``production`` (a sample of
            the window's production traces, judged as recorded; ``evals.production``).
        until: a production run's window end (default: now).

    Returns:
        The run summary (``evals.runs.RunOutcome.summary``).
    """
    logger = get_run_logger()
    if source == "production":
        session = RunSession.open_production(
            contract,
            results,
            trigger=trigger,
            level=gate_level,  # type: ignore[arg-type]
            until=until,
        )
    else:
        session = RunSession.open(
            contract,
            results,
            trigger=trigger,
            resume=resume,
            use_cache=use_cache,
            level=gate_level,  # type: ignore[arg-type]
        )
    with session, session.redactor.filtering_logs():
        for note in session.notes:
            logger.info("%s: %s", session.contract.agent, note)
        logger.info("%s", session.describe())
        if session.production is None:
            result = _streamed(session, task_runner)
        else:  # a sample the contract bounds, scored reusing stored scores: in this process
            outputs = generate_outputs(session)
            result = commit_run(session, outputs, score_in_session(session, outputs))
        record = result.record
        _gate_artifact(result)
        logger.info("%s: run %s %s", record.agent, record.run_id, record.verdict)
        actor = f"evaluate-agent flow ({record.trigger} run)"
        outcome = (
            session.act(result, _subflows(session, actor), actor)
            if act
            else session.outcome(result)
        )
        for note in session.generation_notes(result):
            logger.info("%s: %s", record.agent, note)
        create_markdown_artifact(
            markdown=run_summary_markdown(results, record.run_id, contract=session.contract),
            key=f"summary-{record.agent}"
            + ("-production" if record.source == "production" else ""),
            description=f"{record.agent} {record.version} at {record.level}: {record.verdict}",
        )
        return session.redactor.value(outcome.summary())  # type: ignore[no-any-return]
