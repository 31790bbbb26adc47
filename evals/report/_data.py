"""What a report shows, read from the results store, the ledger and the contracts.

Everything here is plain data over the store's records (``RunRecord``, ``SampleRecord``,
``Decision``) and the ledger's incidents: the pages, the charts and the Markdown summary are
rendered from these objects. Nothing is written anywhere; the ledger is opened only when it
exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.ci import compare_samples
from evals.contract import Contract, discover_contracts, load_contract
from evals.dataset import Case, load_dataset
from evals.errors import UserError, did_you_mean, display_path
from evals.metrics import METRICS
from evals.online import trace_cases
from evals.readiness import MONITORING_TRIGGERS, AgentState, rank
from evals.scorecard import Scorecard, measure
from evals.scorers import build_masker
from evals.store import (
    Decision,
    Incident,
    LedgerEntry,
    MetricRecord,
    ResultsStore,
    RunRecord,
    SampleRecord,
    existing_ledger,
    ledger_path,
)

__all__ = [
    "MONITORING_TRIGGERS",
    "AgentReport",
    "CaseChange",
    "CaseFailure",
    "CaseSource",
    "Failure",
    "MetricComparison",
    "case_masks",
    "compare_runs",
    "failing_cases",
    "first_failing_cases",
    "ledger_state",
    "level_rank",
    "load_agents",
    "mask_spans",
    "masked",
    "masked_words",
    "scorer_better",
    "stored_failing_cases",
    "violation_spans",
]

level_rank = rank
"""Position on the ladder; unknown or missing levels rank below ``draft``."""


# --- agents ---------------------------------------------------------------------------------


@dataclass
class AgentReport(AgentState):
    """One agent's state, with its audit trail and what could not be read."""

    decisions: list[Decision] = field(default_factory=list)
    """The audit trail, oldest first."""
    problems: list[str] = field(default_factory=list)
    """What could not be read (a broken contract, a missing dataset), in words."""
    scorecard: Scorecard | None = None
    """The contract measured from the stored production telemetry (a ``telemetry`` block)."""

    def decisions_of(self, incident: Incident) -> list[Decision]:
        """The decisions that opened, updated or closed an incident, oldest first."""
        return [
            d
            for d in self.decisions
            if d.details.get("incident") == incident.id
            or incident.id in (d.details.get("incidents") or ())
        ]

    def run(self, run_id: str | None) -> RunRecord | None:
        """One of the agent's runs by id."""
        return next((r for r in self.runs if r.run_id == run_id), None)


def ledger_state(
    results: str,
) -> tuple[dict[str, LedgerEntry], dict[str, list[Incident]], str | None]:
    """Ledger entries and incidents (newest first) by agent, and a note when there is none."""
    path = ledger_path(results)
    if path is not None and not path.is_file():
        # Opening a Ledger creates the file; a report never writes, so absent stays absent.
        note = f"no ledger at {display_path(path)}: levels come from the runs and contracts"
        return {}, {}, note
    ledger, missing = existing_ledger(results)
    if ledger is None:
        return {}, {}, missing
    incidents: dict[str, list[Incident]] = {}
    for incident in ledger.incidents():
        incidents.setdefault(incident.agent, []).append(incident)
    return {entry.agent: entry for entry in ledger.entries()}, incidents, None


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
    runs: dict[str, list[RunRecord]] = {}
    for run in store.runs():
        runs.setdefault(run.agent, []).append(run)
    decisions: dict[str, list[Decision]] = {}
    for decision in store.decisions():
        decisions.setdefault(decision.agent, []).append(decision)
    entries, incidents, ledger_note = ledger_state(root)
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
        card = None
        if contract is not None and contract.telemetry is not None:
            try:
                card = measure(contract, root)
            except UserError as exc:
                problems += [f"the scorecard could not be measured: {p}" for p in exc.problems]
        reports.append(
            AgentReport(
                name,
                contract,
                entries.get(name),
                runs.get(name, []),
                incidents.get(name, []),
                decisions.get(name, []),
                problems,
                card,
            )
        )
    return reports, notes


# --- cases and the drill-down -------------------------------------------------------------


class CaseSource:
    """Golden cases by id, read from the contract's dataset file (inputs are not stored)."""

    def __init__(self, contract: Contract | None, store: ResultsStore | None = None) -> None:
        self.contract = contract
        self.store = store
        self._loaded: dict[Path, tuple[dict[str, Case], str | None, str | None]] = {}

    def for_run(
        self, run: RunRecord, case_ids: Sequence[str] = ()
    ) -> tuple[dict[str, Case], str | None]:
        """Cases of the file this run read, and a note when they may not be what it saw.

        A production run's cases are its traces (``case_ids`` of them), read from the stored
        spans (masked as stored), each with its span tree.
        """
        if run.source == "production":
            if self.store is None:
                return {}, "the traces of this production run are not available here"
            found = trace_cases(self.store, list(case_ids))
            missing = len(set(case_ids) - set(found))
            note = f"{missing} trace(s) are no longer in the store" if missing else None
            return found, note
        if self.contract is None:
            return {}, "no contract, so the golden cases (inputs and contexts) are not shown"
        path = self.contract.resolve(run.dataset or self.contract.evals.dataset)
        if path not in self._loaded:
            try:
                dataset = load_dataset(path)
                self._loaded[path] = (
                    {c.id: c for c in self._masked(dataset.cases)},
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

    def _masked(self, cases: Sequence[Case]) -> list[Case]:
        """Inputs and contexts as the store would keep them (``evals.store_outputs``)."""
        assert self.contract is not None
        if self.contract.evals.store_outputs == "raw":
            return list(cases)
        masker = build_masker(self.contract)
        texts = [t for c in cases for t in (c.input, *c.contexts)]
        masked = dict(zip(texts, (m.text for m in masker.mask_many(texts)), strict=True))
        return [
            c.model_copy(
                update={"input": masked[c.input], "contexts": [masked[t] for t in c.contexts]}
            )
            for c in cases
        ]


_SCORER_BETTER = {spec.scorer: spec.better for spec in METRICS.values() if spec.scorer}


def scorer_better(scorer: str) -> str | None:
    """``higher`` or ``lower`` for a scorer's per-case values, ``None`` when unknown."""
    return _SCORER_BETTER.get(scorer)


@dataclass(frozen=True)
class Failure:
    """Why one case fails on one scorer."""

    sample: SampleRecord
    why: str


@dataclass(frozen=True)
class CaseFailure:
    """A case of a run that failed at least one scorer, with everything stored about it."""

    case_id: str
    tags: tuple[str, ...]
    output: str | None
    failures: list[Failure]
    samples: dict[str, SampleRecord]
    """Every scorer's sample of this case (policy violations mask the output's spans)."""

    @property
    def metrics(self) -> list[str]:
        """Scorers this case fails on."""
        return [f.sample.metric for f in self.failures]


def _wrong_side(value: float, row: MetricRecord) -> bool:
    assert row.threshold is not None
    return value < row.threshold if row.direction == "min" else value > row.threshold


def failing_cases(run: RunRecord, samples: Sequence[SampleRecord]) -> list[CaseFailure]:
    """Cases that failed a scorer, errored, or sit beyond a gate the run did not pass.

    Scorers that judge each case (grounding, hallucination, policy) say ``passed``; for those
    that only measure (latency, cost, the rag scores) a case counts when the run failed or
    could not pass that metric's gate and the case's own value is on the wrong side of it.
    Most failures first, then by case id.
    """
    not_passing = _not_passing(run)
    by_case: dict[str, dict[str, SampleRecord]] = {}
    for sample in samples:
        by_case.setdefault(sample.case_id, {})[sample.metric] = sample
    failures = [
        found
        for case_id, scored in by_case.items()
        if (found := _case_failure(case_id, scored, not_passing)) is not None
    ]
    failures.sort(key=_failure_order)
    return failures


def first_failing_cases(
    run: RunRecord, batches: Iterable[Sequence[SampleRecord]], limit: int
) -> tuple[int, list[CaseFailure]]:
    """How many cases fail (as :func:`failing_cases` says), and the first ``limit`` of them.

    Reads the run's samples batch by batch (``ResultsStore.iter_samples``), each case's
    together as the store keeps them, and keeps ``limit`` cases at most: a summary of a
    100,000-case run costs what ten cases cost.
    """
    not_passing = _not_passing(run)
    count = 0
    kept: list[CaseFailure] = []
    case_id: str | None = None
    scored: dict[str, SampleRecord] = {}

    def close() -> None:
        nonlocal count, kept
        found = _case_failure(case_id, scored, not_passing) if case_id is not None else None
        if found is not None:
            count += 1
            kept.append(found)
            if len(kept) > 2 * limit:
                kept = sorted(kept, key=_failure_order)[:limit]

    for batch in batches:
        for sample in batch:
            if sample.case_id != case_id:
                close()
                case_id, scored = sample.case_id, {}
            scored[sample.metric] = sample
    close()
    return count, sorted(kept, key=_failure_order)[:limit]


def stored_failing_cases(
    store: ResultsStore, run: RunRecord, limit: int
) -> tuple[int, list[CaseFailure]]:
    """:func:`first_failing_cases` of a stored run, read in two passes.

    The cases are counted and picked on the samples' light columns (values, verdicts,
    explanations); only the ``limit`` cases kept are read again whole, with their outputs
    and evidence. A 100,000-case run's summary so parses a few cases' evidence, not every
    case's, and its memory does not grow with the run.
    """
    count, kept = first_failing_cases(run, store.iter_samples(run, light=True), limit)
    if not kept:
        return count, []
    return count, failing_cases(run, store.samples(run, case_ids={c.case_id for c in kept}))


def _failure_order(failure: CaseFailure) -> tuple[int, str]:
    return -len(failure.failures), failure.case_id


def _not_passing(run: RunRecord) -> dict[str, list[MetricRecord]]:
    """Scorer → the gated metrics on it the run did not pass."""
    not_passing: dict[str, list[MetricRecord]] = {}
    for row in run.gated:
        spec = METRICS.get(row.metric)
        if row.verdict != "pass" and spec and spec.scorer and row.threshold is not None:
            not_passing.setdefault(spec.scorer, []).append(row)
    return not_passing


def _case_failure(
    case_id: str, scored: dict[str, SampleRecord], not_passing: dict[str, list[MetricRecord]]
) -> CaseFailure | None:
    """What one case failed, or ``None``."""
    found = []
    for sample in scored.values():
        if sample.error:
            found.append(Failure(sample, f"could not be scored: {sample.error}"))
        elif sample.passed is False:
            found.append(Failure(sample, sample.explanation))
        elif sample.passed is None and sample.value is not None:
            beyond = [r for r in not_passing.get(sample.metric, []) if _wrong_side(sample.value, r)]
            if beyond:
                gates = ", ".join(f"{r.metric} {r.threshold_text}" for r in beyond)
                found.append(
                    Failure(
                        sample,
                        f"{sample.explanation}: beyond the {gates} gate ({beyond[0].verdict})",
                    )
                )
    if not found:
        return None
    first = next(iter(scored.values()))
    return CaseFailure(case_id, first.tags, first.output, found, scored)


# --- candidate vs baseline ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaseChange:
    """One case that got worse from the baseline to the candidate on one metric."""

    case_id: str
    metric: str
    baseline: SampleRecord
    candidate: SampleRecord
    delta: float | None
    """Candidate minus baseline; ``None`` when either side has no value."""
    newly_failing: bool
    """Passed on the baseline, fails on the candidate."""


@dataclass(frozen=True)
class MetricComparison:
    """One metric over the cases both runs scored, paired by case id (see ``compare_samples``)."""

    metric: str
    better: str | None
    n_paired: int
    baseline_mean: float | None
    """The metric on the baseline's paired cases."""
    candidate_mean: float | None
    """The metric on the candidate's paired cases."""
    change: str
    """``regression``, ``improvement``, ``no_change`` or ``inconclusive``."""
    reason: str
    worse: list[CaseChange]
    n_better: int
    only_baseline: int
    only_candidate: int

    @property
    def mean_delta(self) -> float | None:
        """Candidate minus baseline."""
        if self.baseline_mean is None or self.candidate_mean is None:
            return None
        return self.candidate_mean - self.baseline_mean


def compare_runs(
    baseline: Sequence[SampleRecord],
    candidate: Sequence[SampleRecord],
    contract: Contract | None = None,
    level: str | None = None,
) -> list[MetricComparison]:
    """The CI comparison of two runs (``evals.ci.compare_samples``), with each worse case's samples.

    The metrics are those the CI gate compares for the contract (``ci.compare``, else the
    level's gates); without a contract, every metric whose scorer both runs have.
    """
    scorers = {s.metric for s in baseline} & {s.metric for s in candidate}
    if contract is not None and rank(level) >= 0:
        gates = contract.gates(level)  # type: ignore[arg-type]
        names = contract.ci.compare if contract.ci.compare is not None else list(gates)
        confidence, tolerance = contract.autonomy.confidence, contract.ci.tolerance
        min_samples = contract.ci.min_samples or contract.autonomy.min_samples
    else:
        names = [n for n, spec in METRICS.items() if spec.scorer in scorers]
        confidence, tolerance, min_samples = 0.95, {}, 1
    names = [n for n in names if METRICS[n].scorer in scorers]
    base = _by_scorer(baseline)
    cand = _by_scorer(candidate)
    comparisons = []
    for delta in compare_samples(
        names, baseline, candidate, confidence=confidence, tolerance=tolerance,
        min_samples=min_samples,
    ):  # fmt: skip
        scorer = METRICS[delta.metric].scorer
        assert scorer is not None
        before, after = base.get(scorer, {}), cand.get(scorer, {})
        worse = []
        for case_id in delta.worse:
            b, c = before[case_id], after[case_id]
            moved = None if b.value is None or c.value is None else c.value - b.value
            worse.append(
                CaseChange(
                    case_id, delta.metric, b, c, moved, b.passed is True and c.passed is False
                )
            )
        worse.sort(key=lambda w: not w.newly_failing)  # stable: worst first within each group
        comparisons.append(
            MetricComparison(
                metric=delta.metric,
                better=METRICS[delta.metric].better,
                n_paired=delta.n,
                baseline_mean=delta.baseline,
                candidate_mean=delta.candidate,
                change=str(delta.change),
                reason=delta.reason,
                worse=worse,
                n_better=len(delta.better),
                only_baseline=len(set(before) - set(after)),
                only_candidate=len(set(after) - set(before)),
            )
        )
    return comparisons


def _by_scorer(samples: Iterable[SampleRecord]) -> dict[str, dict[str, SampleRecord]]:
    out: dict[str, dict[str, SampleRecord]] = {}
    for sample in samples:
        out.setdefault(sample.metric, {})[sample.case_id] = sample
    return out


def mask_spans(samples: Mapping[str, SampleRecord]) -> list[tuple[str, str]]:
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


def masked(text: str | None, pairs: Sequence[tuple[str, str]]) -> str:
    """``text`` with every raw span of ``pairs`` replaced by its masked form."""
    if not text:
        return ""
    for raw, shown in pairs:
        text = text.replace(raw, shown)
    return text


def masked_words(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    """Also hide the words of a masked span: a judge's reasons list them one by one."""
    text = masked(text, pairs)
    words = {w.lower() for raw, _ in pairs for w in re.findall(r"[A-Za-z0-9]{2,}", raw)}
    if not words:
        return text
    return re.sub(
        r"[A-Za-z0-9]{2,}", lambda m: "***" if m.group(0).lower() in words else m.group(0), text
    )


def case_masks(samples: Iterable[SampleRecord]) -> dict[str, list[tuple[str, str]]]:
    """Masked spans per case of one run (see :func:`mask_spans`)."""
    policy = {s.case_id: {"policy_violation": s} for s in samples if s.metric == "policy_violation"}
    return {case_id: pairs for case_id, scored in policy.items() if (pairs := mask_spans(scored))}
