"""A production run's evidence: the window, the sample, the cases, and the window's statistics.

:func:`plan_production` reads the agent's traces of the window (``evals.production``), draws
the sample (``_sample.py``), turns each sampled trace into a case (``_traces.py``), and
measures what every trace of the window shows — error rate, cost and latency — so that those
come from the whole traffic, not the sample. The run itself goes through the engine's
``RunSession`` like a golden run (``RunSession.open_production``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from evals.contract import Contract, ProductionConfig
from evals.dataset import Case, load_dataset
from evals.errors import UserError, display_path
from evals.metrics import METRICS, MetricValue, aggregate
from evals.online._coverage import Coverage, Embedder, golden_coverage, production_inputs
from evals.online._sample import Sample, draw_sample
from evals.online._traces import TraceCase, TraceSummary, build_cases, trace_summaries
from evals.scorers import Score, price_for
from evals.store import Output, ResultsStore, RunRecord

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "GROUNDING_SUITES",
    "REFERENCE_SCORERS",
    "ProductionPlan",
    "cached_scores",
    "measure_coverage",
    "needs_production",
    "parse_window",
    "plan_production",
    "population_metrics",
]

GROUNDING_SUITES = ("grounding", "hallucination", "rag")
"""Suites whose scorers read the retrieved passages: a trace without any is not judged by
them (it still counts for policy, cost and latency)."""

REFERENCE_SCORERS = frozenset({"answer_correctness", "context_precision", "context_recall"})
"""Scorers that compare with a case's reference answer: production traces have none, so they
leave production runs out (answer relevance, which needs none, still runs)."""

_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_window(window: str) -> timedelta:
    """``12h``, ``1d``, ``2w`` as a duration.

    Raises:
        ValueError: the text is not a whole number followed by ``h``, ``d`` or ``w``.
    """
    match = re.fullmatch(r"([1-9][0-9]*)(h|d|w)", window)
    if match is None:
        raise ValueError(f"'{window}' is not a window like '12h', '1d' or '2w'")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class ProductionPlan:
    """What a production run judges, and what the whole window showed."""

    config: ProductionConfig
    since: datetime
    until: datetime
    sample: Sample
    cases: list[Case]
    """The judged traces as cases (id = trace id), proportional ones first."""
    outputs: list[Output]
    """The output each trace recorded, in the order of ``cases``."""
    estimate: list[bool]
    """Per case: drawn in proportion to the traffic (enters the metrics), or forced."""
    no_passages: frozenset[str]
    """Trace ids with no retrieved passages: not judged by the grounding suites."""
    skipped: dict[str, int]
    """Sampled traces that could not be judged at all, by reason."""
    population: dict[str, MetricValue]
    """Metrics measured on every trace of the window (error rate, cost, latency)."""
    notes: list[str] = field(default_factory=list)
    budget_cut: int = 0
    """Traces the judging budget (``max_cost_usd``) left out of the proportional sample."""
    suites: tuple[str, ...] = ()
    """The contract's suites (which of them were not judged on traces without passages)."""
    coverage: Coverage | None = None
    """``golden_coverage`` of the window and its uncovered clusters (``coverage: true``)."""

    @property
    def trace_hash(self) -> str:
        """The judged traces' ids, hashed: the 'dataset version' of the run."""
        digest = hashlib.sha256()
        for case in self.cases:
            digest.update(case.id.encode() + b"\n")
        return digest.hexdigest()

    @property
    def dataset_label(self) -> str:
        """How the run names what it judged: ``production:<since>..<until>``."""
        return f"production:{self.since:%Y-%m-%dT%H:%MZ}..{self.until:%Y-%m-%dT%H:%MZ}"

    def summary(self) -> dict[str, Any]:
        """What the run's record keeps of the sample (``RunRecord.production``)."""
        suites = [s for s in GROUNDING_SUITES if s in self.suites]
        return {
            "window": self.config.window,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "traces": self.sample.population,
            "sampled": len(self.sample.proportional),
            "forced": len(self.sample.forced),
            "judged": len(self.cases),
            "budget_cut": self.budget_cut,
            "skipped": dict(self.skipped),
            "not_judged": {suite: len(self.no_passages) for suite in suites},
            "strata": {
                " / ".join(key): {"traces": total, "sampled": drawn}
                for key, (total, drawn) in sorted(self.sample.strata.items())
            },
            "population_metrics": sorted(self.population),
            "coverage": self.coverage.to_dict() if self.coverage is not None else None,
        }


def needs_production(contract: Contract, level: str) -> bool:
    """Whether holding ``level`` needs production evidence as well as golden evidence.

    ``evals.production.required_from`` names the lowest such level; a promotion to it or above
    needs a passing production run at the level's gates, and a missing one is not a pass.
    """
    config = contract.evals.production
    return config is not None and config.requires(level)  # type: ignore[arg-type]


def population_metrics(
    traces: Sequence[TraceSummary], suites: Sequence[str], confidence: float
) -> dict[str, MetricValue]:
    """Error rate, cost and latency of every trace of the window.

    A large window's mean cost gets a normal-approximation interval (its bootstrap would cost
    seconds and say the same); small ones are aggregated exactly like a run's.
    """
    out: dict[str, MetricValue] = {}
    out["error_rate"] = aggregate(
        METRICS["error_rate"], [1.0 if t.error is not None else 0.0 for t in traces], confidence
    )
    answered = [t for t in traces if t.error is None]
    if "latency" in suites:
        latencies = [t.latency_s for t in answered]
        for name, spec in METRICS.items():
            if spec.suite == "latency":
                out[name] = aggregate(spec, latencies, confidence)
    if "cost" in suites:
        costs = [t.cost_usd for t in answered]
        spec = METRICS["cost_per_case_usd"]
        known = np.asarray([c for c in costs if c is not None], dtype=np.float64)
        if known.size > 5000:
            mean = float(known.mean())
            half = (
                NormalDist().inv_cdf(0.5 + confidence / 2)
                * float(known.std(ddof=1))
                / math.sqrt(known.size)
            )
            out[spec.name] = MetricValue(
                spec.name,
                mean,
                max(mean - half, 0.0),
                mean + half,
                int(known.size),
                len(costs) - int(known.size),
                "normal",
                confidence,
                "",
            )
        else:
            out[spec.name] = aggregate(spec, costs, confidence)
    return out


def _judge_cost_per_trace(contract: Contract, case: Case, output: Output) -> float:
    """Estimated USD an LLM-tier judge spends on one trace (0 for the offline tiers).

    About four characters a token; each grounding scorer asks the judge twice (claims, then
    verdicts) per repeat, each call sending the passages, the question and the answer with
    500 tokens of instructions and getting 300 back.
    """
    grounding = contract.evals.grounding
    if grounding.judge not in ("llm", "ragas") or grounding.model is None:
        return 0.0
    price = price_for(grounding.model, contract.evals.cost.prices)
    if price is None:
        return 0.0
    suites = sum(s in contract.evals.suites for s in GROUNDING_SUITES)
    if not suites or output.text is None:
        return 0.0
    chars = len(case.input) + len(output.text) + sum(len(c) for c in case.contexts)
    calls = 2 * grounding.repeats * suites
    return calls * ((chars / 4 + 500) * price[0] + 300 * price[1])


def measure_coverage(
    contract: Contract,
    store: ResultsStore,
    since: datetime,
    until: datetime,
    embedder: Embedder | None = None,
) -> Coverage:
    """``golden_coverage`` of the agent's production inputs of a window by its golden set."""
    config = contract.evals.production
    threshold = config.coverage_threshold if config is not None else 0.75
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    return golden_coverage(
        production_inputs(store, contract.agent, since, until),
        dataset.cases,
        threshold=threshold,
        confidence=contract.autonomy.confidence,
        embedder=embedder,
    )


def plan_production(
    contract: Contract,
    results: str,
    until: datetime | None = None,
    embedder: Embedder | None = None,
) -> ProductionPlan:
    """Sample the window's traces and build the run's cases (see the module docstring).

    Args:
        contract: a contract with an ``evals.production`` block.
        results: the results root holding the telemetry.
        until: the window's end (default: now).
        embedder: embeds inputs for ``golden_coverage`` (default: the bundled model).

    Raises:
        UserError: the contract has no ``evals.production`` block, or the window holds no
            trace of the agent (missing evidence is never a pass).
    """
    config = contract.evals.production
    if config is None:
        raise UserError.single(
            display_path(contract.source),
            "evals.production",
            "no production block: add 'evals.production: {n: 200, window: 1d}' to judge "
            "production traces",
        )
    end = (until or datetime.now(UTC)).astimezone(UTC)
    start = end - parse_window(config.window)
    store = ResultsStore(results)
    with store.connect() as db:  # one set of views for the window and the sampled traces
        return _plan(contract, results, store, db, start, end, embedder)


def _plan(
    contract: Contract,
    results: str,
    store: ResultsStore,
    db: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    embedder: Embedder | None,
) -> ProductionPlan:
    """:func:`plan_production` once the window is known, over one connection's views."""
    config = contract.evals.production
    assert config is not None  # checked by plan_production
    traces, notes = trace_summaries(
        store,
        contract.agent,
        start,
        end,
        route_attribute=config.route_attribute,
        prices=contract.evals.cost.prices,
        default_model=contract.evals.cost.model,
        db=db,
    )
    if not traces:
        raise UserError.single(
            display_path(contract.source),
            "evals.production.window",
            f"no production trace of '{contract.agent}' started between {start:%Y-%m-%d %H:%M} "
            f"and {end:%Y-%m-%d %H:%M} UTC in {results}; ingest telemetry first "
            "(impactgate ingest FILE, or impactgate collect)",
        )
    seed = f"{config.seed}:{end.isoformat()}"
    sample = draw_sample(traces, config.n, config.strata, seed)
    built = _build(store, sample, db)
    budget_cut = 0
    if config.max_cost_usd is not None:
        costs = {
            t.summary.trace_id: _judge_cost_per_trace(contract, t.case, t.output)
            for t in built
            if t.case is not None and t.output is not None
        }
        total = sum(costs.values())
        if total > config.max_cost_usd and sample.proportional:
            per_trace = total / max(len(costs), 1)
            fits = max(int(config.max_cost_usd // per_trace) - len(sample.forced), 0)
            smaller = draw_sample(traces, min(fits, config.n), config.strata, seed)
            budget_cut = len(sample.proportional) - len(smaller.proportional)
            notes.append(
                f"the judging budget (${config.max_cost_usd:g}) covers about {fits} traces at "
                f"an estimated ${per_trace:.4f} each: {budget_cut} fewer traces were sampled"
            )
            sample = smaller
            built = _build(store, sample, db)
    forced = {t.trace_id for t in sample.forced}
    cases: list[Case] = []
    outputs: list[Output] = []
    estimate: list[bool] = []
    skipped: Counter[str] = Counter()
    no_passages: set[str] = set()
    for trace in built:
        if trace.case is None or trace.output is None:
            skipped[trace.skipped or "unknown"] += 1
            continue
        cases.append(trace.case)
        outputs.append(trace.output)
        estimate.append(trace.summary.trace_id not in forced)
        if trace.no_passages and trace.output.error is None:
            no_passages.add(trace.summary.trace_id)
    for reason, count in skipped.most_common():
        notes.append(f"{count} sampled trace(s) skipped: {reason}")
    grounding = [s for s in GROUNDING_SUITES if s in contract.evals.suites]
    if no_passages and grounding:
        notes.append(
            f"{len(no_passages)} trace(s) retrieved no passages: not judged by "
            f"{', '.join(grounding)} (still checked for policy, cost and latency)"
        )
    population = population_metrics(traces, contract.evals.suites, contract.autonomy.confidence)
    coverage = None
    if config.coverage:
        coverage = measure_coverage(contract, store, start, end, embedder)
        population["golden_coverage"] = coverage.metric
    plan = ProductionPlan(
        config=config,
        since=start,
        until=end,
        sample=sample,
        cases=cases,
        outputs=outputs,
        estimate=estimate,
        no_passages=frozenset(no_passages),
        skipped=dict(skipped),
        population=population,
        notes=notes,
        budget_cut=budget_cut,
        suites=tuple(contract.evals.suites),
        coverage=coverage,
    )
    return plan


def _build(store: ResultsStore, sample: Sample, db: duckdb.DuckDBPyConnection) -> list[TraceCase]:
    tags = {t.trace_id: ["forced"] for t in sample.forced}
    return build_cases(store, sample.traces, tags=tags, db=db)


def cached_scores(
    store: ResultsStore,
    agent: str,
    scoring_hash: str,
    scorers: Sequence[str],
    trace_ids: Sequence[str],
    runs: Sequence[RunRecord] | None = None,
) -> dict[str, dict[str, Score]]:
    """Scores earlier production runs with the same judges gave these traces.

    A trace judged by a production run whose scoring fingerprint is ``scoring_hash`` (same
    suites, judges, rule packs and impactgate version) is not judged again: its stored
    scores (masked as stored) stand in. Only traces with a stored score for every scorer are
    returned.
    """
    wanted = set(trace_ids)
    earlier = [
        r
        for r in (runs if runs is not None else store.runs(agent))
        if r.source == "production" and r.scoring_hash == scoring_hash
    ]
    if not wanted or not earlier:
        return {}
    found: dict[str, dict[str, Score]] = {}
    for sample in store.samples(earlier):
        if sample.case_id not in wanted or sample.metric not in scorers:
            continue
        found.setdefault(sample.case_id, {})[sample.metric] = Score(
            sample.value,
            sample.passed,
            sample.explanation,
            sample.evidence if isinstance(sample.evidence, dict) else {},
            sample.error,
        )
    return {k: v for k, v in found.items() if all(s in v for s in scorers)}
