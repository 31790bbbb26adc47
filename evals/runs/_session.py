"""A run session: one run of one agent, from ledger sync to the recorded decision.

The engine decides everything a run involves (which version, which level, the journal, the
cache, the record, the verdict, the action); an orchestrator only wraps the pieces::

    with RunSession.open("policies/billing-assistant.yaml", "results") as session:
        result = session.stream(progress, submit=...)  # batches generated, scored, stored
        decision = session.act(result)               # escalate, roll back, recover or none

``stream`` walks the dataset a batch at a time, so a run's memory does not grow with its
dataset; ``submit`` hands each batch's scoring to an orchestrator (a flow's task runner). A
production run, whose sample the contract bounds, goes piece by piece in memory instead::

    outputs = session.generate()                     # a task
    scores = session.score(session.cases, outputs)
    result = session.commit(outputs, scores)         # written

or ``session.run()`` for all of it. With ``results=None`` nothing is stored and the ledger is
not touched: ``evaluate`` is such a session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from evals.actions import Action, choose_action, perform
from evals.contract import Contract, Level, load_contract
from evals.dataset import BATCH, Case, Dataset
from evals.errors import display_path
from evals.gates import Verdict, overall_verdict
from evals.labelling import POLICY_AGREEMENT, JudgeCheck, check_policy
from evals.metrics import DRIFT_METRICS, METRICS, MetricValue, fmt_interval, fmt_value
from evals.online import (
    GROUNDING_SUITES,
    REFERENCE_SCORERS,
    ProductionPlan,
    TraceTarget,
    cached_scores,
    drift,
    drift_gates,
    earlier_nights,
    monitored,
    monitored_gates,
    plan_production,
)
from evals.runs._generate_shards import (
    GenerationShard,
    generate_in_processes,
    generation_shards,
)
from evals.runs._resume import check_resumable, open_unfinished_run
from evals.runs._run import (
    EvalPlan,
    Produce,
    RunResult,
    RunTally,
    Trigger,
    case_results,
    code_version,
    conclude,
    generate,
    new_run_id,
    prepare,
    score,
    scoring_fingerprint,
    summarize,
)
from evals.runs._shards import at_support_threshold
from evals.scorecard import Scorecard, measure, refresh
from evals.scorers import Score, build_masker, build_scorers
from evals.store import (
    Decision,
    Ledger,
    LedgerEntry,
    MetricRecord,
    OutputCache,
    ResultsStore,
    RunHeader,
    RunJournal,
    RunRecord,
    journal_dir,
    ledger_for,
)
from evals.targets import LiveTarget, OnOutput, Output, Progress, Redactor, Target

__all__ = ["Perform", "RunOutcome", "RunSession", "Submit", "evaluate"]

Perform = Callable[[Action], Decision | None]
"""Carries out an action and returns the decision to record (a flow runs a subflow)."""

Submit = Callable[[Sequence[Case], Sequence[Output]], Callable[[], dict[str, list[Score]]]]
"""Starts scoring a batch (cases, their outputs) and returns what waits for its scores."""


def _check_judge(contract: Contract, results: str | None) -> JudgeCheck | None:
    """The grounding judge against the owner's labels, if there are any.

    Labels come from the file the contract names (``evals.grounding.calibration.labels`` or
    ``evals.grounding.labels``), else from the results store; the agent's last calibrated run
    tells whether the judge changed since.
    """
    from evals.labelling import check_judge, contract_labels, label_source
    from evals.scorers import grounding_options

    labels = contract_labels(contract)
    store = ResultsStore(results) if results is not None else None
    if labels is None and store is not None:
        labels = store.labels(contract.agent, "grounding")
    if not labels:
        return None
    previous = None
    if store is not None:
        calibrated = [r.calibration for r in store.runs(contract.agent) if r.calibration]
        previous = calibrated[-1] if calibrated else None
    return check_judge(
        grounding_options(contract)["config"],
        labels,
        confidence=contract.autonomy.confidence,
        previous=previous,
        source=label_source(contract),
    )


def _check_policy(contract: Contract, results: str | None) -> MetricValue | None:
    """The policy rule packs against the owner's policy labels, if there are any."""
    if results is None or "policy" not in contract.evals.suites:
        return None
    labels = ResultsStore(results).labels(contract.agent, "policy")
    return check_policy(labels, confidence=contract.autonomy.confidence) if labels else None


def _kept(journal: RunJournal | None) -> frozenset[str]:
    """Cases a resumed run takes from its journal: all but calls that failed transiently."""
    if journal is None:
        return frozenset()
    return frozenset(k for k, (_, output) in journal.outputs().items() if not output.retryable)


@dataclass(frozen=True)
class RunOutcome:
    """What a run did: its result, the decision it caused, and what a reader should know."""

    result: RunResult
    decision: Decision | None
    notes: list[str]
    level_after: str
    """The agent's level once the action was taken."""
    called: int = 0
    """Cases the target was called for in this session."""
    resumed: bool = False
    scorecard: Scorecard | None = None
    """The contract measured from production telemetry, when it has a ``telemetry`` block."""

    def summary(self) -> dict[str, Any]:
        """Plain data for flows' results, ``--json`` and the CLI table (secrets removed)."""
        record = self.result.record
        return {
            **record.to_dict(),
            "level_after": self.level_after,
            "action": self.decision.kind if self.decision else "none",
            "decision": self.decision.to_dict() if self.decision else None,
            "notes": self.notes,
            "outputs": {
                "called": self.called,
                "cached": record.n_cached,
                "resumed": record.n_resumed,
                "errors": self.result.tally.failed,
            },
            "resumed": self.resumed,
            "scorecard": self.scorecard.to_dict() if self.scorecard is not None else None,
        }


@dataclass
class RunSession:
    """One run of one agent; open it with :meth:`open`, close it (or use ``with``)."""

    contract: Contract
    contract_file: str
    """The contract path as given (flows pass it on to action subflows)."""
    results: str | None
    """The results root, or ``None``: nothing is stored and the ledger is not touched."""
    plan: EvalPlan
    target: Target
    """The target at the version this run evaluates."""
    header: RunHeader
    entry: LedgerEntry | None
    """The agent's ledger entry after syncing with the contract (``None`` without a ledger)."""
    notes: list[str]
    """What changed or what a reader should know, in words (ledger sync, version choice)."""
    journal: RunJournal | None
    cache: OutputCache | None
    redactor: Redactor
    ledger: Ledger | None
    baseline_run_id: str | None = None
    resumed_ids: frozenset[str] = field(default_factory=frozenset)
    """Cases journaled before this session started (a resumed run)."""
    scorecard: Scorecard | None = None
    """The contract measured from production telemetry (its sources ingested first); ``None``
    without a ``telemetry`` block or a results root."""
    judge_check: JudgeCheck | None = None
    """The grounding judge against the owner's labels (``None``: it has no labels)."""
    policy_check: MetricValue | None = None
    """``policy_agreement``: the rule packs against the owner's policy labels (``None``:
    there are none)."""
    production: ProductionPlan | None = None
    """For a production run: the window, its sample and what every trace of it showed."""
    reused: int = 0
    """Production traces whose scores an earlier run with the same judges gave."""

    @classmethod
    def open(
        cls,
        contract: Contract | str | Path,
        results: str | None,
        *,
        trigger: Trigger = "manual",
        resume: str | None = None,
        use_cache: bool = True,
        level: Level | None = None,
        version: str | None = None,
        sync_ledger: bool = True,
        journal: bool = True,
        baseline_run_id: str | None = None,
        cache: OutputCache | None = None,
        started_at: datetime | None = None,
    ) -> RunSession:
        """Prepare a run: load, sync the ledger, choose the version, preflight, journal.

        Args:
            contract: the contract or its path.
            results: results root (path or URI); ``None`` stores nothing and skips the ledger.
            trigger: why the run happens.
            resume: finish this unfinished run (same id, version and dataset).
            use_cache: reuse outputs of the same version on unchanged cases.
            level: hold the run against this level's gates (default: the level the agent
                holds in the ledger, else the contract's).
            version: evaluate this version (default: the ledger's active version, else the
                one the target declares).
            sync_ledger: bring the ledger in line with the contract first (a deployment);
                off for CI candidates, which are not deployed.
            journal: journal outputs as they arrive, so a killed run can be resumed.
            baseline_run_id: for a CI candidate, the baseline run it will be compared with.
            cache: the output cache to use (default: the user's, when ``use_cache``).
            started_at: when the run starts (default: now); a replayed history sets it.

        Raises:
            UserError: the contract, its dataset or target is invalid, a secret is missing,
                or the run to resume does not match.
        """
        if isinstance(contract, Contract):
            loaded, contract_file = contract, str(contract.source)
        else:
            loaded, contract_file = load_contract(contract), str(contract)
        shown = display_path(loaded.source)
        plan = prepare(loaded)
        judge_check = None
        if {"grounding", "hallucination"} & set(loaded.evals.suites):
            judge_check = _check_judge(loaded, results)
            if judge_check is not None and judge_check.calibration is not None:
                loaded = at_support_threshold(loaded, judge_check.calibration.threshold)
                plan = replace(plan, contract=loaded, scorers=build_scorers(loaded))
        unfinished = open_unfinished_run(results, resume) if resume and results else None
        ledger = ledger_for(results) if results is not None and sync_ledger else None
        notes: list[str] = []
        entry = None
        declared = plan.target.version()
        if ledger is not None:
            entry, notes = ledger.sync(
                loaded.agent,
                declared.label,
                loaded.autonomy.level,
                loaded.autonomy.rollback.known_good,
                shown,
            )
        target = plan.target
        wanted = (
            unfinished.header.version
            if unfinished is not None
            else version or (entry.active_version if entry else declared.label)
        )
        if wanted != declared.label:
            if wanted in target.available_versions():
                target = target.at_version(wanted)
            elif unfinished is None and version is None:
                notes.append(
                    f"active version {wanted} cannot be produced by this target; "
                    f"evaluating {declared.label}"
                )
            else:
                target = target.at_version(wanted)  # raises a UserError naming the versions
        agent_version = target.version()
        target.preflight()  # a missing secret stops the run before it leaves a journal behind
        gate_level: str = level or (entry.level if entry else loaded.autonomy.level)
        if unfinished is not None:
            check_resumable(unfinished, shown, agent_version, plan.dataset.content_hash)
            header = unfinished.header
            run_journal: RunJournal | None = unfinished
        else:
            started = started_at or datetime.now(UTC)
            header = RunHeader(
                run_id=new_run_id(started),
                agent=loaded.agent,
                version=agent_version.label,
                version_hash=agent_version.hash,
                dataset=loaded.evals.dataset,
                dataset_hash=plan.dataset.content_hash,
                trigger=trigger,
                level=gate_level,
                started_at=started,
                contract=str(loaded.source),
            )
            run_journal = (
                RunJournal.start(journal_dir(results), header)
                if journal and results is not None
                else None
            )
        if not header.level:
            header = replace(header, level=gate_level)  # a journal from before levels were kept
        if cache is None and use_cache and target.cacheable:
            cache = OutputCache.default()
        scorecard = None
        if results is not None and loaded.telemetry is not None:
            # A CI gate runs a pull request's contract: its telemetry sources (a python source
            # is code that runs with production's credentials) are not called, as its rollback
            # hook is not; the gate reads what the nightly ingested.
            scorecard, measured = _telemetry(loaded, results, ingest_sources=trigger != "ci")
            notes += measured
        if judge_check is not None:
            notes += judge_check.notes
        policy_check = _check_policy(loaded, results)
        if policy_check is not None:
            shown_value = fmt_value(POLICY_AGREEMENT, policy_check.value)
            notes.append(
                f"policy labels: the rule packs agree with your {policy_check.n} labels at "
                f"{shown_value} {fmt_interval(POLICY_AGREEMENT, policy_check.low, policy_check.high)}"
                " (balanced accuracy)"
                if policy_check.value is not None
                else f"policy labels: {policy_check.note}"
            )
        return cls(
            contract=loaded,
            contract_file=contract_file,
            results=results,
            plan=plan,
            target=target,
            header=header,
            entry=entry,
            notes=notes,
            journal=run_journal,
            cache=cache if target.cacheable else None,
            redactor=target.redactor(),
            ledger=ledger,
            baseline_run_id=baseline_run_id,
            resumed_ids=_kept(run_journal),
            scorecard=scorecard,
            judge_check=judge_check,
            policy_check=policy_check,
        )

    @classmethod
    def open_production(
        cls,
        contract: Contract | str | Path,
        results: str,
        *,
        trigger: Trigger = "manual",
        level: Level | None = None,
        until: datetime | None = None,
        sync_ledger: bool = True,
        started_at: datetime | None = None,
    ) -> RunSession:
        """Prepare a production run: sample the window's traces and judge them like cases.

        The target is each trace's recorded output (nothing is called), the version is the
        one the ledger has deployed, and the run is stored with ``source = production``.
        Nothing is journaled: the outputs are already recorded.

        Args:
            contract: the contract (with an ``evals.production`` block) or its path.
            results: the results root holding the telemetry and the runs.
            trigger: why the run happens.
            level: hold the run against this level's gates (default: the agent's level).
            until: the end of the window (default: now).
            sync_ledger: bring the ledger in line with the contract first.
            started_at: when the run starts (default: now).

        Raises:
            UserError: no production block, no trace in the window, or an invalid contract.
        """
        if isinstance(contract, Contract):
            loaded, contract_file = contract, str(contract.source)
        else:
            loaded, contract_file = load_contract(contract), str(contract)
        golden = prepare(loaded)  # validates the contract; the golden target names the version
        notes: list[str] = []
        judge_check = None
        if {"grounding", "hallucination"} & set(loaded.evals.suites):
            # Production is judged by the same judge as golden data: checked against the
            # owner's labels, at the threshold fitted on them when the contract calibrates.
            judge_check = _check_judge(loaded, results)
            if judge_check is not None and judge_check.calibration is not None:
                loaded = at_support_threshold(loaded, judge_check.calibration.threshold)
        scorecard = None
        if loaded.telemetry is not None:
            # Fresh traces for the sample, and the measured workflow for the level's gates on
            # it (its red flags and its table are the golden run's to report).
            scorecard, notes = _telemetry(loaded, results)
        production = plan_production(loaded, results, until)
        ledger = ledger_for(results) if sync_ledger else None
        declared = golden.target.version()
        entry = None
        if ledger is not None:
            entry, synced = ledger.sync(
                loaded.agent,
                declared.label,
                loaded.autonomy.level,
                loaded.autonomy.rollback.known_good,
                display_path(loaded.source),
            )
            notes += synced
        label = entry.active_version if entry else declared.label
        target = TraceTarget(loaded.agent, label, production.outputs)
        dataset = Dataset(loaded.source, tuple(production.cases), production.trace_hash)
        plan = EvalPlan(loaded, dataset, target, build_scorers(loaded), build_masker(loaded))
        gate_level: str = level or (entry.level if entry else loaded.autonomy.level)
        started = started_at or datetime.now(UTC)
        header = RunHeader(
            run_id=new_run_id(started),
            agent=loaded.agent,
            version=label,
            version_hash=target.version().hash,
            dataset=production.dataset_label,
            dataset_hash=production.trace_hash,
            trigger=trigger,
            level=gate_level,
            started_at=started,
            contract=str(loaded.source),
            source="production",
        )
        return cls(
            contract=loaded,
            contract_file=contract_file,
            results=results,
            plan=plan,
            target=target,
            header=header,
            entry=entry,
            notes=[*notes, *production.notes],
            journal=None,
            cache=None,
            redactor=target.redactor(),
            ledger=ledger,
            production=production,
            scorecard=scorecard,
            judge_check=judge_check,
            policy_check=_check_policy(loaded, results),
        )

    # -- the pieces a flow wraps ----------------------------------------------------------

    @property
    def cases(self) -> list[Case]:
        """The dataset's cases, in order."""
        return list(self.plan.dataset.cases)

    @property
    def label(self) -> str:
        """``<agent> <version>``, for progress and logs."""
        return f"{self.contract.agent} {self.target.version()}"

    def describe(self) -> str:
        """One line: what this session evaluates, at which level, on what."""
        verb = "resuming" if self.resumed_ids else "evaluating"
        dataset = display_path(self.plan.dataset.path)
        if self.production is not None:
            sample = self.production.sample
            return (
                f"{self.contract.agent}: judging {len(self.plan.dataset)} production traces "
                f"({len(sample.proportional)} sampled, {len(sample.forced)} errors and "
                f"escalations) of {sample.population} in {self.production.dataset_label}, "
                f"version {self.target.version()} at level {self.header.level}, "
                f"run {self.header.run_id}"
            )
        return (
            f"{self.contract.agent}: {verb} {self.target.version()} at level {self.header.level} "
            f"on {len(self.plan.dataset)} cases ({dataset}), run {self.header.run_id}"
        )

    def generate(
        self,
        cases: Sequence[Case] | None = None,
        progress: Progress | None = None,
        *,
        produce: Produce | None = None,
    ) -> list[Output]:
        """Produce (or reuse from the journal and the cache) one output per case.

        Cases the journal or the cache has are taken from them here; only the others are
        called: by ``produce`` when given (a flow's shards on a task runner's workers), else
        from :attr:`processes` worker processes when the contract asks for more than one,
        else from this process. Every new output is journaled and cached here as it arrives.
        """
        if produce is None and self.processes > 1:
            produce = self.in_processes
        return generate(
            self.target,
            self.cases if cases is None else cases,
            progress,
            cache=self.cache,
            journal=self.journal,
            produce=produce,
        )

    @property
    def processes(self) -> int:
        """Worker processes the target's calls are spread over (``evals.target.processes``).

        Only live targets (``litellm``, ``http``) are sharded; every other target is 1.
        """
        return self.target.processes if isinstance(self.target, LiveTarget) else 1

    def shards(self, cases: Sequence[Case], batch: int | None = None) -> list[GenerationShard]:
        """The cases to call split over :attr:`processes` workers, with the limits shared.

        See :func:`evals.runs.generation_shards`; ``batch`` for an orchestrator that keeps
        :attr:`processes` shards of at most that many cases in flight.
        """
        target = self.target
        assert isinstance(target, LiveTarget), "only live targets are sharded"
        return generation_shards(
            cases, self.processes, target.concurrency, target.requests_per_minute, batch
        )

    @property
    def shard_contract(self) -> str:
        """The contract path a generation or scoring shard loads, absolute."""
        return str(Path(self.contract.source).resolve())

    def in_processes(
        self,
        cases: Sequence[Case],
        progress: Progress | None = None,
        on_output: OnOutput | None = None,
    ) -> list[Output]:
        """Call ``cases`` from :attr:`processes` worker processes of this machine."""
        target = self.target
        assert isinstance(target, LiveTarget), "only live targets are sharded"
        return generate_in_processes(
            self.shard_contract,
            target.version(),
            cases,
            progress,
            on_output,
            processes=self.processes,
            concurrency=target.concurrency,
            requests_per_minute=target.requests_per_minute,
        )

    @property
    def shardable(self) -> bool:
        """Whether :func:`evals.runs.score_shard` scores like :meth:`score`.

        Given the contract file and :attr:`support_threshold`, it does for a golden run. Not
        for a production run (its scores reuse earlier runs' and skip traces without
        passages): that scores in the session's process.
        """
        return self.production is None

    @property
    def support_threshold(self) -> float | None:
        """The grounding judge's threshold calibrated on the owner's labels, if it is.

        The contract file does not carry it (the session fits it when it opens), so a shard
        is given it: ``score_shard(contract_file, cases, outputs, support_threshold=...)``.
        """
        if self.judge_check is None or self.judge_check.calibration is None:
            return None
        return self.judge_check.calibration.threshold

    def score(self, cases: Sequence[Case], outputs: Sequence[Output]) -> dict[str, list[Score]]:
        """Every scorer over one batch of cases (a shard: any batch, in any order).

        A production run judges no trace twice: traces an earlier production run judged with
        the same judges take that run's scores, and traces without passages are not judged by
        the grounding suites.
        """
        if self.production is None:
            return score(self.plan.scorers, cases, outputs)
        return self._score_production(cases, outputs)

    def _score_production(
        self, cases: Sequence[Case], outputs: Sequence[Output]
    ) -> dict[str, list[Score]]:
        assert self.production is not None
        assert self.results is not None
        names = list(self.plan.scorers)
        reused = cached_scores(
            ResultsStore(self.results),
            self.contract.agent,
            scoring_fingerprint(self.contract),
            names,
            [c.id for c in cases],
        )
        self.reused += len(reused)
        passages = {
            name
            for name in names
            if any(m.scorer == name and m.suite in GROUNDING_SUITES for m in METRICS.values())
        }
        reference = set(names) & REFERENCE_SCORERS
        out: dict[str, list[Score]] = {name: [] for name in names}
        for name, scorer in self.plan.scorers.items():
            if name in reference:  # a production trace has no reference answer
                out[name] = [
                    reused[c.id][name]
                    if c.id in reused
                    else Score.skipped("a production trace has no reference answer")
                    for c in cases
                ]
                continue
            todo = [
                i
                for i, c in enumerate(cases)
                if c.id not in reused
                and not (name in passages and c.id in self.production.no_passages)
            ]
            fresh = score({name: scorer}, [cases[i] for i in todo], [outputs[i] for i in todo])[
                name
            ]
            by_index = dict(zip(todo, fresh, strict=True))
            for i, case in enumerate(cases):
                if case.id in reused:
                    out[name].append(reused[case.id][name])
                elif i in by_index:
                    out[name].append(by_index[i])
                else:
                    out[name].append(
                        Score.skipped("the trace retrieved no passages to judge grounding on")
                    )
        return out

    def summarize(
        self,
        outputs: Sequence[Output],
        scores: dict[str, list[Score]],
        finished_at: datetime | None = None,
    ) -> RunResult:
        """The run's result, held against its level's gates; nothing is written."""
        draft = self._draft(finished_at)
        if self.production is None:
            return self._summarize(draft, outputs, scores)
        return self._summarize_production(draft, outputs, scores)

    def _draft(self, finished_at: datetime | None) -> RunRecord:
        """The run's record before its metrics: header, times, fingerprints."""
        header = self.header
        return RunRecord(
            **{name: getattr(header, name) for name in RunHeader.__dataclass_fields__},
            finished_at=finished_at or datetime.now(UTC),
            code_version=code_version(self.contract.root),
            n_cases=0,  # counted by the tally (conclude)
            n_resumed=len(self.resumed_ids),
            scoring_hash=scoring_fingerprint(self.contract),
            baseline_run_id=self.baseline_run_id,
        )

    def _summarize(
        self,
        draft: RunRecord,
        outputs: Sequence[Output],
        scores: dict[str, list[Score]],
        **production: Any,
    ) -> RunResult:
        """:func:`summarize` with this session's contract, cases, scorecard and judge check."""
        return summarize(
            self.contract,
            draft,
            self.cases,
            outputs,
            scores,
            self.redactor,
            self.plan.masker,
            telemetry=self.scorecard.metrics() if self.scorecard is not None else None,
            judge_check=self.judge_check,
            policy_check=self.policy_check,
            resumed=self.resumed_ids,
            **production,
        )

    def _summarize_production(
        self, draft: RunRecord, outputs: Sequence[Output], scores: dict[str, list[Score]]
    ) -> RunResult:
        """A production run's result: estimated from the sample, monitored across nights."""
        assert self.production is not None
        assert self.results is not None
        production = self.production
        result = self._summarize(
            draft, outputs, scores, estimate=production.estimate, population=production.population
        )
        monitoring = production.config.monitoring
        store = ResultsStore(self.results)
        stored = store.runs(self.contract.agent)
        golden = [
            r
            for r in stored
            if r.source == "golden" and r.trigger != "ci" and r.version == draft.version
        ]
        earlier = earlier_nights(stored, production.until, monitoring.horizon)
        means = [
            name
            for name in dict.fromkeys(
                [g.metric for g in result.gates if monitored(g.metric)]
                + [DRIFT_METRICS[g.metric] for g in result.gates if g.metric in DRIFT_METRICS]
            )
            if METRICS[name].kind == "mean"
        ]
        tonight = {name: _values(result, name, production.estimate) for name in means}
        earlier_values: dict[str, dict[str, list[float]]] = {}
        if means and earlier:
            scorer_of = {name: METRICS[name].scorer for name in means}
            for sample in store.samples(earlier):
                if "forced" in sample.tags:
                    continue
                for name, scorer_name in scorer_of.items():
                    if sample.metric == scorer_name and sample.value is not None:
                        earlier_values.setdefault(sample.run_id, {}).setdefault(name, []).append(
                            sample.value
                        )
        gates, evidence = monitored_gates(
            result.gates, tonight, earlier, earlier_values, monitoring
        )
        gates, gaps, gap_evidence = drift_gates(
            gates,
            golden[-1] if golden else None,
            result.record.metrics,
            tonight,
            earlier,
            earlier_values,
            monitoring,
            min_samples=self.contract.autonomy.min_samples,
            confidence=self.contract.autonomy.confidence,
        )
        evidence.update(gap_evidence)
        by_gate = {g.metric: g for g in gates}
        metrics = {
            name: replace(m, verdict=str(by_gate[name].verdict), reason=by_gate[name].reason)
            if name in by_gate
            else m
            for name, m in result.record.metrics.items()
        }
        for name, value in gaps.items():
            metrics[name] = MetricRecord.of(name, value, by_gate.get(name))
        record = replace(
            result.record,
            metrics=metrics,
            verdict=str(overall_verdict(gates)),
            production={
                **production.summary(),
                "reused": self.reused,
                "monitoring": evidence,
                "drift": {
                    "golden_run_id": golden[-1].run_id,
                    "metrics": [row.to_dict() for row in drift(golden[-1], metrics)],
                }
                if golden
                else None,
            },
        )
        return replace(result, record=record, gates=gates)

    def commit(
        self,
        outputs: Sequence[Output],
        scores: dict[str, list[Score]],
        finished_at: datetime | None = None,
    ) -> RunResult:
        """Summarize, write the run to the store, and drop the journal (the run committed)."""
        result = self.summarize(outputs, scores, finished_at)
        if self.results is not None:
            ResultsStore(self.results).write_run(result.record, result.samples())
        if self.journal is not None:
            # Committed: from here on the run is in the store, and the journal must go, or a
            # later --resume would find a run that looks unfinished.
            self.journal.discard()
        return result

    def generation_notes(self, result: RunResult) -> list[str]:
        """Where the run's outputs came from (cache, journal, local token counts, failures)."""
        return result.tally.notes(len(self.resumed_ids))

    def choose_action(self, result: RunResult) -> Action:
        """What the run's verdict calls for (see ``evals.actions.choose_action``)."""
        record = result.record
        incidents = (
            self.ledger.incidents(self.contract.agent, open_only=True, kind="breach")
            if self.ledger
            else []
        )
        return choose_action(
            self.contract,
            result.gates,
            incidents,
            run_id=record.run_id,
            version=record.version,
            level=record.level,
        )

    def act(
        self, result: RunResult, perform_action: Perform | None = None, actor: str = ""
    ) -> RunOutcome:
        """Carry out the action the run calls for, mark a passing version good, and say so.

        Without a ledger (``results=None``, or a CI candidate) nothing is acted on.

        Args:
            result: the committed run.
            perform_action: carries the action out (a flow passes its subflows); default:
                the engine, in this process, recording the decision in the store.
            actor: who acts, for the audit trail (default: the run's trigger).
        """
        if self.ledger is None or self.entry is None:
            return self.outcome(result)
        record = result.record
        actor = actor or f"{record.trigger} run"
        action = self.choose_action(result)
        decision = None
        if action.kind != "none":
            decision = (perform_action or (lambda a: self._perform(a, actor)))(action)
        if result.verdict == Verdict.PASS and record.version == self.entry.active_version:
            self.ledger.record_pass(self.contract.agent, record.version, record.run_id)
        if self.production is None and self.scorecard is not None and self.scorecard.measured:
            self._record_red_flags(record.run_id)
        return self.outcome(result, decision)

    def _record_red_flags(self, run_id: str) -> None:
        """The scorecard's red flags as medium incidents.

        Each is opened once, updated by later runs, and closed when it clears.
        """
        assert self.ledger is not None
        assert self.scorecard is not None
        entry = self.ledger.get(self.contract.agent)
        level = entry.level if entry else self.header.level
        updates, closed = self.ledger.record_red_flags(
            self.contract.agent, [f.name for f in self.scorecard.red_flags], level, run_id
        )
        for update in updates:
            incident = update.incident
            verb = "opened" if update.opened else "still open"
            self.notes.append(
                f"red flag {incident.metrics[0]}: medium incident #{incident.id} {verb}"
                + (f" ({incident.runs} runs)" if incident.runs > 1 else "")
            )
        for incident in closed:
            self.notes.append(
                f"red flag {incident.metrics[0]} cleared: closed incident #{incident.id}"
            )

    def outcome(self, result: RunResult, decision: Decision | None = None) -> RunOutcome:
        """What the run did, with the agent's level as the ledger has it now."""
        level = result.record.level
        if self.ledger is not None:
            after = self.ledger.get(self.contract.agent)
            level = after.level if after else level
        notes = [*self.notes, *self.generation_notes(result)]
        scorecard = self.scorecard if self.production is None else None  # shown once, golden
        return RunOutcome(
            result, decision, notes, level, result.tally.called, bool(self.resumed_ids), scorecard
        )

    def _perform(self, action: Action, actor: str) -> Decision | None:
        assert self.ledger is not None
        assert self.results is not None
        decision = perform(self.contract, self.ledger, action, actor)
        if decision is not None:
            ResultsStore(self.results).write_decisions([decision])
        return decision

    def run(self, progress: Progress | None = None, *, act: bool = True) -> RunOutcome:
        """Everything in this process: generate, score, commit, and act (when asked).

        A golden run streams (:meth:`stream`); a production run, whose sample the contract
        bounds, is summarized in memory.
        """
        if self.production is not None:
            outputs = self.generate(progress=progress)
            result = self.commit(outputs, self.score(self.cases, outputs))
        else:
            result = self.stream(progress)
        return self.act(result) if act else self.outcome(result)

    def stream(
        self,
        progress: Progress | None = None,
        *,
        produce: Produce | None = None,
        submit: Submit | None = None,
        ahead: int = 0,
        batch: int = BATCH,
        finished_at: datetime | None = None,
    ) -> RunResult:
        """Generate, score and store the run batch by batch, then commit it.

        The dataset is walked ``batch`` cases at a time: each batch is generated
        (:meth:`generate`), scored, written to the store as a row group of the run's samples
        file and added to the run's tally, then dropped, so memory does not grow with the
        dataset. The metrics, intervals and gates come from the tally at the end, and the run
        commits as a whole: its samples file appears, then its ``runs`` rows. A run that
        stops half way leaves no trace in the store (its journal keeps its outputs, so
        ``--resume`` calls only the cases it lacks).

        Args:
            progress: called with the number of cases answered so far.
            produce: calls the cases, like :meth:`generate`'s.
            submit: starts scoring a batch and returns what waits for its scores (a flow's
                task runner); default: :meth:`score`, here and now.
            ahead: batches submitted before the oldest one's scores are taken: an
                orchestrator's workers keep busy while the next batch is generated.
            batch: cases per batch.
            finished_at: when the run finished (default: when the last batch is stored).
        """
        if self.production is not None:
            raise ValueError("a production run is summarized in memory (commit)")
        header = self.header
        store = ResultsStore(self.results) if self.results is not None else None
        writer = (
            store.open_samples(header.agent, header.started_at.strftime("%Y-%m-%d"), header.run_id)
            if store is not None
            else None
        )
        tally = RunTally(tuple(self.contract.evals.suites))
        pending: deque[tuple[list[Case], list[Output], Callable[[], dict[str, list[Score]]]]]
        pending = deque()
        done = 0

        def absorb(
            cases: list[Case], outputs: list[Output], scores: dict[str, list[Score]]
        ) -> None:
            results = case_results(
                self.contract, cases, outputs, scores, self.redactor, self.plan.masker
            )
            tally.add(results, resumed=self.resumed_ids)
            if writer is not None:
                writer.write(
                    [
                        sample.to_row()
                        for r in results
                        for sample in r.samples(header.run_id, header.version)
                    ]
                )

        try:
            for cases in self.plan.dataset.batches(batch):
                outputs = self.generate(cases, _offset(progress, done), produce=produce)
                done += len(cases)
                pending.append((cases, outputs, (submit or self._score_now)(cases, outputs)))
                while len(pending) > ahead:
                    cases, outputs, scores = pending.popleft()
                    absorb(cases, outputs, scores())
            while pending:
                cases, outputs, scores = pending.popleft()
                absorb(cases, outputs, scores())
            result = conclude(
                self.contract,
                self._draft(finished_at),
                tally,
                self.scorecard.metrics() if self.scorecard is not None else None,
                judge_check=self.judge_check,
                policy_check=self.policy_check,
            )
            if writer is not None and store is not None:
                writer.commit()
                store.commit_run(result.record)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if self.journal is not None and self.results is not None:
            self.journal.discard()  # committed: a later --resume must not find it unfinished
        return result

    def _score_now(
        self, cases: Sequence[Case], outputs: Sequence[Output]
    ) -> Callable[[], dict[str, list[Score]]]:
        scores = self.score(cases, outputs)
        return lambda: scores

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop journaling (the journal stays unless the run committed) and flush the cache."""
        if self.journal is not None:
            self.journal.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _offset(progress: Progress | None, offset: int) -> Progress | None:
    """A batch's progress as the run's: ``offset`` cases were done before it."""
    if progress is None:
        return None
    return lambda done: progress(offset + done)


def _telemetry(
    contract: Contract, results: str, *, ingest_sources: bool = True
) -> tuple[Scorecard, list[str]]:
    """Ingest the contract's telemetry sources (unless not to), measure the scorecard; notes."""
    notes = []
    report = refresh(contract, results) if ingest_sources else None
    if not ingest_sources:
        notes.append(
            "telemetry: sources not ingested (a CI gate never calls a contract's telemetry "
            "sources); measured from what the store holds"
        )
    if report is not None:
        new = [f for f in report.files if f.status == "ingested"]
        records = sum(f.records for f in new)
        notes.append(
            f"telemetry: {len(report.files)} source file(s), {len(new)} new ({records:,} records)"
            + ("" if report.ok else "; some records were left out (see impactgate ingest)")
        )
    scorecard = measure(contract, results)
    notes += [f"telemetry: {note}" for note in scorecard.notes]
    return scorecard, notes


def _values(result: RunResult, metric: str, estimate: Sequence[bool]) -> list[float]:
    """Tonight's per-case values of a metric, over the proportional sample."""
    name = METRICS[metric].scorer
    assert name is not None
    values = []
    for case, kept in zip(result.cases, estimate, strict=True):
        found = case.scores.get(name)
        if kept and found is not None and found.value is not None and not found.is_skipped:
            values.append(found.value)
    return values


def evaluate(
    contract: Contract,
    *,
    level: Level | None = None,
    version: str | None = None,
    trigger: Trigger = "manual",
    progress: Progress | None = None,
    cache: OutputCache | None = None,
    journal: RunJournal | None = None,
) -> RunResult:
    """Evaluate a contract's agent end to end, without storing anything or touching a ledger.

    Args:
        contract: the loaded contract.
        level: gates of this level are applied; defaults to the contract's level.
        version: evaluate this version instead of the one the target declares.
        trigger: why the run happens.
        progress: called with the number of cases answered so far.
        cache: reuse (and fill) this output cache (default: none).
        journal: record outputs as they arrive (and reuse those it already has).
    """
    session = RunSession.open(
        contract,
        None,
        trigger=trigger,
        level=level,
        version=version,
        use_cache=cache is not None,
        cache=cache,
    )
    if journal is not None:
        session.journal = journal
        session.resumed_ids = _kept(journal)
    try:
        outputs = session.generate(progress=progress)
        return session.summarize(outputs, session.score(session.cases, outputs))
    finally:
        if session.cache is not None:
            session.cache.flush()
