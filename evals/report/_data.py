"""What a report shows, read from the results store, the ledger and the contracts.

Everything here is plain data: the pages, the charts and the Markdown summary are rendered
from these objects. Nothing is written anywhere; the ledger is opened only when it exists.
How open incidents are derived is in docs/report.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from evals.contract import LEVELS, Contract, Level, discover_contracts, load_contract
from evals.contract import level_rank as contract_level_rank
from evals.dataset import Case, load_dataset
from evals.errors import UserError, did_you_mean, display_path
from evals.gates import GateResult, evaluate_gates
from evals.metrics import METRICS, MetricValue
from evals.store import SAMPLES_SCHEMA, Ledger, LedgerEntry, ResultsStore, ledger_path

__all__ = [
    "INCIDENT_KINDS",
    "MONITORING_TRIGGERS",
    "AgentReport",
    "CaseChange",
    "CaseFailure",
    "CaseSource",
    "DecisionView",
    "Failure",
    "Incident",
    "MetricComparison",
    "MetricRow",
    "RunView",
    "SampleView",
    "case_masks",
    "compare_runs",
    "decisions_by_agent",
    "failing_cases",
    "incidents",
    "ledger_entries",
    "level_rank",
    "load_agents",
    "mask_spans",
    "read_samples",
    "runs_by_agent",
    "scorer_better",
    "violation_spans",
]

MONITORING_TRIGGERS = frozenset({"nightly", "manual", "promotion"})
"""Runs of the deployed version. ``ci`` runs evaluate a candidate and stay off the scorecard
and the trends; they get a candidate-vs-baseline page instead."""

INCIDENT_KINDS = frozenset({"escalate", "rollback", "rollback_refused"})
"""Decisions that open an incident."""

BASELINE_COLUMN = "baseline_run_id"
"""Nullable ``runs`` column naming the baseline a CI run was compared with."""


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _level(value: Any) -> Level | None:
    return value if value in LEVELS else None


def level_rank(level: str | None) -> int:
    """Position on the ladder; unknown or missing levels rank below ``draft``."""
    known = _level(level)
    return -1 if known is None else contract_level_rank(known)


# --- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One metric of one run, as stored: the number, its interval and the gate it met."""

    metric: str
    value: float | None
    low: float | None
    high: float | None
    n: int
    n_errors: int
    method: str | None
    confidence: float | None
    note: str | None
    gated: bool
    direction: str | None
    threshold: float | None
    verdict: str | None
    reason: str | None
    rollback: bool

    def metric_value(self) -> MetricValue:
        """The stored number as the engine's :class:`MetricValue` (to judge other gates)."""
        return MetricValue(
            self.metric,
            self.value,
            self.low,
            self.high,
            self.n,
            self.n_errors,
            self.method or "",
            self.confidence or 0.95,
            self.note or "",
        )

    @property
    def threshold_text(self) -> str:
        """``≤ 0.1`` as the contract writes it, or empty when not gated."""
        if self.threshold is None or self.direction not in {"min", "max"}:
            return ""
        return f"{'≥' if self.direction == 'min' else '≤'} {self.threshold:g}"


@dataclass(frozen=True)
class RunView:
    """One committed run with its metrics."""

    run_id: str
    agent: str
    version: str
    version_hash: str | None
    dataset: str | None
    dataset_hash: str | None
    trigger: str
    level: str | None
    started_at: datetime
    finished_at: datetime | None
    code_version: str | None
    n_cases: int
    verdict: str
    date: str
    baseline_run_id: str | None
    metrics: dict[str, MetricRow]

    @property
    def gated(self) -> list[MetricRow]:
        """The metrics this run was gated on, in stored order."""
        return [m for m in self.metrics.values() if m.gated]

    @property
    def failing(self) -> list[MetricRow]:
        """Gates that did not pass."""
        return [m for m in self.gated if m.verdict != "pass"]


def runs_by_agent(table: pa.Table) -> dict[str, list[RunView]]:
    """Group ``runs`` rows into runs per agent, oldest first."""
    has_baseline = BASELINE_COLUMN in table.column_names
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    by_run: dict[str, dict[str, Any]] = {}
    for i in range(table.num_rows):
        run_id = columns["run_id"][i]
        run = by_run.get(run_id)
        if run is None:
            baseline = columns[BASELINE_COLUMN][i] if has_baseline else None
            run = by_run[run_id] = {
                "run_id": run_id,
                "agent": columns["agent"][i],
                "version": columns["version"][i] or "?",
                "version_hash": columns["version_hash"][i],
                "dataset": columns["dataset"][i],
                "dataset_hash": columns["dataset_hash"][i],
                "trigger": columns["trigger"][i] or "manual",
                "level": columns["level"][i],
                "started_at": columns["started_at"][i],
                "finished_at": columns["finished_at"][i],
                "code_version": columns["code_version"][i],
                "n_cases": columns["n_cases"][i] or 0,
                "verdict": columns["run_verdict"][i] or "fail",
                "date": columns["date"][i],
                "baseline_run_id": baseline or None,
                "metrics": {},
            }
        metric = columns["metric"][i]
        run["metrics"][metric] = MetricRow(
            metric=metric,
            value=_num(columns["value"][i]),
            low=_num(columns["low"][i]),
            high=_num(columns["high"][i]),
            n=columns["n"][i] or 0,
            n_errors=columns["n_errors"][i] or 0,
            method=columns["method"][i],
            confidence=_num(columns["confidence"][i]),
            note=columns["note"][i],
            gated=bool(columns["gated"][i]),
            direction=columns["threshold_direction"][i],
            threshold=_num(columns["threshold"][i]),
            verdict=columns["verdict"][i],
            reason=columns["reason"][i],
            rollback=bool(columns["rollback_metric"][i]),
        )
    grouped: dict[str, list[RunView]] = {}
    for run in by_run.values():
        if run["started_at"] is None:
            continue  # a row without a start time cannot be placed on any axis
        grouped.setdefault(run["agent"], []).append(RunView(**run))
    for runs in grouped.values():
        runs.sort(key=lambda r: (r.started_at, r.run_id))
    return grouped


# --- decisions and incidents -----------------------------------------------------------------


@dataclass(frozen=True)
class DecisionView:
    """One entry of the audit trail."""

    decision_id: str
    run_id: str | None
    kind: str
    at: datetime
    level_before: str | None
    level_after: str | None
    version_before: str | None
    version_after: str | None
    metrics: tuple[str, ...]
    reason: str
    actor: str
    approved_by: str | None
    notifications: tuple[str, ...]


def decisions_by_agent(table: pa.Table) -> dict[str, list[DecisionView]]:
    grouped: dict[str, list[DecisionView]] = {}
    for row in table.to_pylist():
        if row.get("at") is None:
            continue
        grouped.setdefault(row["agent"], []).append(
            DecisionView(
                decision_id=row.get("decision_id") or "",
                run_id=row.get("run_id"),
                kind=row.get("kind") or "?",
                at=row["at"],
                level_before=row.get("level_before"),
                level_after=row.get("level_after"),
                version_before=row.get("version_before"),
                version_after=row.get("version_after"),
                metrics=tuple(row.get("metrics") or ()),
                reason=row.get("reason") or "",
                actor=row.get("actor") or "",
                approved_by=row.get("approved_by"),
                notifications=tuple(row.get("notifications") or ()),
            )
        )
    for decisions in grouped.values():
        decisions.sort(key=lambda d: d.at)
    return grouped


@dataclass(frozen=True)
class Incident:
    """Consecutive escalations or rollbacks for the same breach, and whether they are over.

    An incident opens with an ``escalate``, ``rollback`` or ``rollback_refused`` decision and
    closes with the first later run of the deployed agent that passed every gate at a level at
    least as high as the one the agent held when the incident opened: for an escalation, any
    later passing run; for a rollback, a passing run at the level it was demoted from (it
    earned its autonomy back). Until then it is open.
    """

    kind: str
    metrics: tuple[str, ...]
    decisions: tuple[DecisionView, ...]
    closed_by: RunView | None

    @property
    def open(self) -> bool:
        """No recovery yet."""
        return self.closed_by is None

    @property
    def first(self) -> DecisionView:
        """The decision that opened it."""
        return self.decisions[0]

    @property
    def latest(self) -> DecisionView:
        """The most recent decision in it."""
        return self.decisions[-1]


def _recovery(
    decision: DecisionView,
    runs: Sequence[RunView],
    recovered: Sequence[tuple[datetime, RunView]] = (),
) -> RunView | None:
    # The ledger says so first: a later "recover" decision names the run that closed it.
    for at, run in recovered:
        if at > decision.at:
            return run
    needed = level_rank(decision.level_before)
    for run in runs:
        if (
            run.started_at > decision.at
            and run.trigger in MONITORING_TRIGGERS
            and run.verdict == "pass"
            and level_rank(run.level) >= needed
        ):
            return run
    return None


def incidents(decisions: Sequence[DecisionView], runs: Sequence[RunView]) -> list[Incident]:
    """Incidents, oldest first; consecutive decisions for the same breach are merged."""
    merged: list[Incident] = []
    by_id = {run.run_id: run for run in runs}
    recovered = sorted(
        ((d.at, by_id[d.run_id]) for d in decisions if d.kind == "recover" and d.run_id in by_id),
        key=lambda pair: pair[0],
    )
    for decision in decisions:
        if decision.kind not in INCIDENT_KINDS:
            continue
        closed_by = _recovery(decision, runs, recovered)
        metrics = tuple(sorted(decision.metrics))
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.kind == decision.kind
            and last.metrics == metrics
            and (last.closed_by.run_id if last.closed_by else None)
            == (closed_by.run_id if closed_by else None)
        ):
            merged[-1] = Incident(last.kind, metrics, (*last.decisions, decision), closed_by)
        else:
            merged.append(Incident(decision.kind, metrics, (decision,), closed_by))
    return merged


# --- agents ---------------------------------------------------------------------------------


@dataclass
class AgentReport:
    """Everything known about one agent: contract, ledger entry, runs and decisions."""

    agent: str
    contract: Contract | None
    ledger: LedgerEntry | None
    runs: list[RunView]
    """Every committed run, oldest first, CI runs included."""
    decisions: list[DecisionView]
    """The audit trail, oldest first."""
    problems: list[str] = field(default_factory=list)
    """What could not be read (a broken contract, a missing dataset), in words."""

    @cached_property
    def monitoring_runs(self) -> list[RunView]:
        """Runs of the deployed version (no CI candidates), oldest first."""
        return [r for r in self.runs if r.trigger in MONITORING_TRIGGERS]

    @property
    def latest(self) -> RunView | None:
        """The most recent run of the deployed version."""
        return self.monitoring_runs[-1] if self.monitoring_runs else None

    @property
    def level(self) -> Level | None:
        """The level the agent holds: the ledger's, else the latest run's, else the contract's."""
        if self.ledger is not None:
            return self.ledger.level
        if self.latest is not None and _level(self.latest.level):
            return _level(self.latest.level)
        return self.contract.autonomy.level if self.contract is not None else None

    @property
    def next_level(self) -> Level | None:
        """The level above the one it holds, or ``None`` at the top."""
        rank = level_rank(self.level)
        return LEVELS[rank + 1] if 0 <= rank < len(LEVELS) - 1 else None

    @property
    def active_version(self) -> str | None:
        """The version the ledger has active, else the latest run's."""
        if self.ledger is not None:
            return self.ledger.active_version
        return self.latest.version if self.latest is not None else None

    @cached_property
    def incidents(self) -> list[Incident]:
        """Every incident, oldest first."""
        return incidents(self.decisions, self.runs)

    @property
    def open_incidents(self) -> list[Incident]:
        """Incidents with no recovery yet, newest first."""
        return [i for i in reversed(self.incidents) if i.open]

    def gates_at(self, level: Level | None, run: RunView | None = None) -> list[GateResult]:
        """The gates of ``level`` held against ``run`` (default: the latest) now.

        Verdicts are computed from the stored numbers and today's contract, so the current
        level's verdict holds even when the run was gated at another level. Empty without a
        contract, a level or a run.
        """
        run = run or self.latest
        if self.contract is None or level is None or run is None:
            return []
        autonomy = self.contract.autonomy
        observed = {name: row.metric_value() for name, row in run.metrics.items()}
        return evaluate_gates(
            self.contract.gates(level),
            observed,
            autonomy.min_samples,
            frozenset(autonomy.rollback.metrics),
        )

    def gated_metrics(self) -> list[str]:
        """Metrics charted as trends: the current and the next level's gates, else stored."""
        names: list[str] = []
        if self.contract is not None:
            for level in (self.level, self.next_level):
                if level is not None:
                    names.extend(self.contract.gates(level))
        else:
            for run in self.monitoring_runs[-1:]:
                names.extend(m.metric for m in run.gated)
        return list(dict.fromkeys(names))


def ledger_entries(results: str) -> tuple[dict[str, LedgerEntry], str | None]:
    path = ledger_path(results)
    if path is None:
        return {}, "the results root is remote and IMPACTGATE_LEDGER is not set: no ledger"
    if not path.is_file():
        # Opening a Ledger creates the file; a report never writes, so absent stays absent.
        return {}, f"no ledger at {display_path(path)}: levels come from the runs and contracts"
    return {entry.agent: entry for entry in Ledger(path).entries()}, None


def _contracts(policies: str | Path) -> tuple[dict[str, Path], list[str]]:
    try:
        paths = discover_contracts(policies)
    except UserError as exc:
        return {}, [str(p) for p in exc.problems]
    return {path.stem: path for path in paths}, []


def load_agents(
    results: str | Path, policies: str | Path, agents: Sequence[str] = ()
) -> tuple[list[AgentReport], list[str]]:
    """Read the store, the ledger and the contracts for every agent (or those named).

    Returns:
        The agents, by name, and notes about what could not be read.

    Raises:
        UserError: the results root does not exist, a named agent is unknown, or there is
            nothing to report.
    """
    root = str(results)
    if "://" not in root and not Path(root).is_dir():
        raise UserError.single(
            root,
            "--results",
            "no results folder here; run `impactgate run` first or pass --results",
        )
    store = ResultsStore(root)
    runs = runs_by_agent(store.runs())
    decisions = decisions_by_agent(store.decisions())
    entries, ledger_note = ledger_entries(root)
    contract_paths, notes = _contracts(policies)
    if ledger_note:
        notes.append(ledger_note)
    known = sorted(set(contract_paths) | set(runs) | set(entries))
    for name in agents:
        if name not in known:
            raise UserError.single(
                root,
                "AGENT",
                f"no contract or results for agent '{name}'{did_you_mean(name, known)}",
            )
    wanted = list(dict.fromkeys(agents)) or known
    if not wanted:
        raise UserError.single(
            root, "", f"nothing to report: no runs here and no contracts in {policies}"
        )
    reports = []
    for name in sorted(wanted):
        contract, problems = None, []
        if name in contract_paths:
            try:
                contract = load_contract(contract_paths[name])
            except UserError as exc:
                problems = [f"the contract could not be loaded: {p}" for p in exc.problems]
        else:
            problems.append(f"no contract for '{name}' in {policies}: thresholds are as stored")
        reports.append(
            AgentReport(
                name,
                contract,
                entries.get(name),
                runs.get(name, []),
                decisions.get(name, []),
                problems,
            )
        )
    return reports, notes


# --- samples, cases and the drill-down ---------------------------------------------------------

_PARTITIONS = pa.schema([("agent", pa.string()), ("date", pa.string())])
_SAMPLE_COLUMNS = [
    "run_id", "case_id", "metric", "value", "passed", "explanation", "evidence", "output",
    "latency_s", "cost_usd", "error", "tags",
]  # fmt: skip


@dataclass(frozen=True)
class SampleView:
    """One case × scorer of a run."""

    case_id: str
    metric: str
    """The scorer's name (``faithfulness``, ``hallucination``, ``policy_violation`` …)."""
    value: float | None
    passed: bool | None
    explanation: str
    evidence: Any
    """Parsed JSON evidence: claims for grounding scorers, violations for the policy scorer."""
    output: str | None
    latency_s: float | None
    cost_usd: float | None
    error: str | None
    tags: tuple[str, ...]


def _evidence(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"raw": text}


def read_samples(store: ResultsStore, runs: Iterable[RunView]) -> dict[str, list[SampleView]]:
    """The samples of the given runs only, by run id.

    Reads only the partitions (agent, date) those runs live in and filters on ``run_id``, so
    a year of nightly runs costs what the few runs asked for cost.
    """
    wanted = {r.run_id: r for r in runs}
    if not wanted:
        return {}
    folder = f"{store.base}/samples"
    if store.fs.get_file_info(folder).type == pafs.FileType.NotFound:
        return {}
    files: list[str] = []
    for agent, date in sorted({(r.agent, r.date) for r in wanted.values()}):
        partition = f"{folder}/agent={agent}/date={date}"
        selector = pafs.FileSelector(partition, allow_not_found=True)
        files.extend(
            info.path
            for info in store.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
        )
    if not files:
        return {}
    dataset = ds.dataset(
        files,
        schema=pa.unify_schemas([SAMPLES_SCHEMA, _PARTITIONS]),
        format="parquet",
        filesystem=store.fs,
        partitioning=ds.partitioning(_PARTITIONS, flavor="hive"),
        partition_base_dir=folder,
    )
    table = dataset.to_table(columns=_SAMPLE_COLUMNS, filter=pc.field("run_id").isin(list(wanted)))
    columns = {name: table.column(name).to_pylist() for name in _SAMPLE_COLUMNS}
    samples: dict[str, list[SampleView]] = {run_id: [] for run_id in wanted}
    for i in range(table.num_rows):
        samples[columns["run_id"][i]].append(
            SampleView(
                case_id=columns["case_id"][i],
                metric=columns["metric"][i],
                value=_num(columns["value"][i]),
                passed=columns["passed"][i],
                explanation=columns["explanation"][i] or "",
                evidence=_evidence(columns["evidence"][i]),
                output=columns["output"][i],
                latency_s=_num(columns["latency_s"][i]),
                cost_usd=_num(columns["cost_usd"][i]),
                error=columns["error"][i],
                tags=tuple(columns["tags"][i] or ()),
            )
        )
    return samples


class CaseSource:
    """Golden cases by id, read from the contract's dataset file (inputs are not stored)."""

    def __init__(self, contract: Contract | None) -> None:
        self.contract = contract
        self._loaded: dict[Path, tuple[dict[str, Case], str | None, str | None]] = {}

    def for_run(self, run: RunView) -> tuple[dict[str, Case], str | None]:
        """Cases of the file this run read, and a note when they may not be what it saw."""
        if self.contract is None:
            return {}, "no contract, so the golden cases (inputs and contexts) are not shown"
        path = self.contract.resolve(run.dataset or self.contract.evals.dataset)
        if path not in self._loaded:
            try:
                dataset = load_dataset(path)
                self._loaded[path] = (
                    {c.id: c for c in dataset.cases},
                    dataset.content_hash,
                    None,
                )
            except UserError as exc:
                self._loaded[path] = ({}, None, str(exc.problems[0]))
        cases, digest, problem = self._loaded[path]
        if problem:
            return {}, f"the dataset could not be read ({problem}); inputs and contexts are missing"
        if run.dataset_hash and digest != run.dataset_hash:
            return cases, (
                f"{display_path(path)} changed since this run (sha256 {run.dataset_hash[:12]} "
                f"then, {(digest or '?')[:12]} now): inputs and contexts below are today's and "
                "may differ from what the agent saw"
            )
        return cases, None


_SCORER_BETTER = {spec.scorer: spec.better for spec in METRICS.values() if spec.scorer}


def scorer_better(scorer: str) -> str | None:
    """``higher`` or ``lower`` for a scorer's per-case values, ``None`` when unknown."""
    return _SCORER_BETTER.get(scorer)


@dataclass(frozen=True)
class Failure:
    """Why one case fails on one scorer."""

    sample: SampleView
    why: str


@dataclass(frozen=True)
class CaseFailure:
    """A case of a run that failed at least one scorer, with everything stored about it."""

    case_id: str
    tags: tuple[str, ...]
    output: str | None
    failures: list[Failure]
    samples: dict[str, SampleView]
    """Every scorer's sample of this case (policy violations mask the output's spans)."""

    @property
    def metrics(self) -> list[str]:
        """Scorers this case fails on."""
        return [f.sample.metric for f in self.failures]


def _wrong_side(value: float, row: MetricRow) -> bool:
    assert row.threshold is not None
    return value < row.threshold if row.direction == "min" else value > row.threshold


def failing_cases(run: RunView, samples: Sequence[SampleView]) -> list[CaseFailure]:
    """Cases that failed a scorer, errored, or sit beyond a gate the run did not pass.

    Scorers that judge each case (grounding, hallucination, policy) say ``passed``; for those
    that only measure (latency, cost, the rag scores) a case counts when the run failed or
    could not pass that metric's gate and the case's own value is on the wrong side of it.
    """
    not_passing: dict[str, list[MetricRow]] = {}
    for row in run.gated:
        spec = METRICS.get(row.metric)
        if row.verdict != "pass" and spec and spec.scorer and row.threshold is not None:
            not_passing.setdefault(spec.scorer, []).append(row)
    by_case: dict[str, dict[str, SampleView]] = {}
    for sample in samples:
        by_case.setdefault(sample.case_id, {})[sample.metric] = sample
    failures = []
    for case_id, scored in by_case.items():
        found = []
        for sample in scored.values():
            if sample.error:
                found.append(Failure(sample, f"could not be scored: {sample.error}"))
            elif sample.passed is False:
                found.append(Failure(sample, sample.explanation))
            elif sample.passed is None and sample.value is not None:
                beyond = [
                    r for r in not_passing.get(sample.metric, []) if _wrong_side(sample.value, r)
                ]
                if beyond:
                    gates = ", ".join(f"{r.metric} {r.threshold_text}" for r in beyond)
                    found.append(
                        Failure(
                            sample,
                            f"{sample.explanation}: beyond the {gates} gate ({beyond[0].verdict})",
                        )
                    )
        if found:
            first = next(iter(scored.values()))
            failures.append(CaseFailure(case_id, first.tags, first.output, found, scored))
    failures.sort(key=lambda f: (-len(f.failures), f.case_id))
    return failures


# --- candidate vs baseline ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaseChange:
    """One case × scorer that got worse from the baseline to the candidate."""

    case_id: str
    metric: str
    baseline: SampleView
    candidate: SampleView
    delta: float | None
    """Candidate minus baseline; ``None`` when either side has no value."""
    newly_failing: bool
    """Passed (or was scored) on the baseline, fails (or errors) on the candidate."""


@dataclass(frozen=True)
class MetricComparison:
    """One scorer over the cases both runs scored, paired by case id."""

    metric: str
    better: str | None
    n_paired: int
    baseline_mean: float | None
    candidate_mean: float | None
    worse: list[CaseChange]
    n_better: int
    only_baseline: int
    only_candidate: int

    @property
    def mean_delta(self) -> float | None:
        """Mean over paired cases of candidate minus baseline."""
        if self.baseline_mean is None or self.candidate_mean is None:
            return None
        return self.candidate_mean - self.baseline_mean


_EPSILON = 1e-9


def compare_runs(
    baseline: Sequence[SampleView], candidate: Sequence[SampleView]
) -> list[MetricComparison]:
    """Pair two runs' samples by case id, per scorer, and list the cases that got worse.

    A case got worse when it passed on the baseline and fails (or errors) on the candidate,
    or when its value moved in the scorer's bad direction. Worse cases come newly failing
    first, then by how far they moved.
    """
    base: dict[str, dict[str, SampleView]] = {}
    cand: dict[str, dict[str, SampleView]] = {}
    for sample in baseline:
        base.setdefault(sample.metric, {})[sample.case_id] = sample
    for sample in candidate:
        cand.setdefault(sample.metric, {})[sample.case_id] = sample
    comparisons = []
    for metric in sorted(set(base) & set(cand)):
        before, after = base[metric], cand[metric]
        better = scorer_better(metric)
        paired = sorted(set(before) & set(after))
        worse: list[CaseChange] = []
        n_better = 0
        sums = [0.0, 0.0]
        n_values = 0
        for case_id in paired:
            b, c = before[case_id], after[case_id]
            delta = None if b.value is None or c.value is None else c.value - b.value
            if delta is not None:
                sums[0] += b.value  # type: ignore[operator]
                sums[1] += c.value  # type: ignore[operator]
                n_values += 1
            newly_failing = (b.passed is True and c.passed is False) or (
                bool(c.error) and not b.error
            )
            moved_bad = delta is not None and (
                (better == "higher" and delta < -_EPSILON)
                or (better == "lower" and delta > _EPSILON)
            )
            moved_good = delta is not None and (
                (better == "higher" and delta > _EPSILON)
                or (better == "lower" and delta < -_EPSILON)
            )
            if newly_failing or moved_bad:
                worse.append(CaseChange(case_id, metric, b, c, delta, newly_failing))
            elif moved_good or (b.passed is False and c.passed is True):
                n_better += 1
        worse.sort(key=lambda w: (not w.newly_failing, -abs(w.delta or 0.0), w.case_id))
        comparisons.append(
            MetricComparison(
                metric=metric,
                better=better,
                n_paired=len(paired),
                baseline_mean=sums[0] / n_values if n_values else None,
                candidate_mean=sums[1] / n_values if n_values else None,
                worse=worse,
                n_better=n_better,
                only_baseline=len(set(before) - set(after)),
                only_candidate=len(set(after) - set(before)),
            )
        )
    return comparisons


def mask_spans(samples: Mapping[str, SampleView]) -> list[tuple[str, str]]:
    """``(raw, masked)`` pairs of every policy violation in a case's output.

    The policy scorer stores each violation's span in the output and a masked form; every
    text shown for the case (output, claims, passages) is shown with the raw span replaced.
    """
    sample = samples.get("policy_violation")
    if sample is None or not sample.output:
        return []
    pairs = [
        (sample.output[start:end], masked)
        for start, end, masked, _ in violation_spans(sample.output, sample.evidence)
    ]
    # Longest first, so a span inside a longer one cannot leave part of the longer one raw.
    return sorted(set(pairs), key=lambda p: -len(p[0]))


def violation_spans(output: str, evidence: Any) -> list[tuple[int, int, str, str]]:
    """``(start, end, masked, rule)`` of each policy violation that fits inside ``output``."""
    if not isinstance(evidence, dict):
        return []
    spans = []
    for violation in evidence.get("violations") or []:
        if not isinstance(violation, dict):
            continue
        start, end = violation.get("start"), violation.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(output):
            masked = str(violation.get("masked") or "***")
            spans.append((start, end, masked, str(violation.get("rule") or "")))
    return sorted(spans)


def case_masks(samples: Iterable[SampleView]) -> dict[str, list[tuple[str, str]]]:
    """Masked spans per case of one run (see :func:`mask_spans`)."""
    policy = {s.case_id: {"policy_violation": s} for s in samples if s.metric == "policy_violation"}
    return {case_id: pairs for case_id, scored in policy.items() if (pairs := mask_spans(scored))}
