"""A run's pieces: prepare a contract, generate outputs, score them, summarize into a record.

The pieces are pure shard-friendly functions; :class:`evals.runs.RunSession` composes them
with the ledger, the journal, the cache and the store, and flows put each in its own task.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from evals.contract import Contract
from evals.dataset import Case, Dataset, load_dataset
from evals.errors import UserError, display_path
from evals.gates import GateResult, Verdict, evaluate_gates, overall_verdict
from evals.labelling import AGREEMENT, POLICY_AGREEMENT, JudgeCheck, unlabelled_policy_note
from evals.metrics import METRICS, PRODUCTION_METRICS, MetricValue, aggregate
from evals.policy import Masked, Masker
from evals.runs._tally import TALLIED, RunTally
from evals.scorers import BatchScorer, Score, build_masker, build_scorers, run_scorer
from evals.store import MetricRecord, OutputCache, RunJournal, RunRecord, SampleRecord
from evals.targets import (
    OnOutput,
    Output,
    Progress,
    Redactor,
    Target,
    build_target,
    case_fingerprint,
)
from evals.vocab import TRIGGERS, Trigger

__all__ = [
    "TRIGGERS",
    "CaseResult",
    "EvalPlan",
    "Produce",
    "RunResult",
    "RunTally",
    "Trigger",
    "case_results",
    "code_version",
    "conclude",
    "generate",
    "generation_notes",
    "new_run_id",
    "prepare",
    "redact_score",
    "score",
    "scoring_fingerprint",
    "summarize",
]


Produce = Callable[[Sequence[Case], Progress | None, OnOutput | None], list[Output]]
"""Produces one output per case in order, like :meth:`evals.targets.Target.generate`."""


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: UTC time plus random suffix (``20261127T230102Z-9f3a1c2b``)."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


@lru_cache(maxsize=4)
def code_version(root: Path | None = None) -> str:
    """Impactgate's version, plus the project's git commit when there is one."""
    try:
        version = package_version("impactgate")
    except PackageNotFoundError:
        version = "unknown"
    if root is not None:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if commit:
            version = f"{version}+g{commit}"
    return version


@dataclass(frozen=True)
class CaseResult:
    """One case: its output and every scorer's score."""

    case: Case
    output: Output
    scores: dict[str, Score]

    @property
    def errored(self) -> bool:
        """The call or any scorer failed on this case."""
        return self.output.error is not None or any(s.error for s in self.scores.values())

    def samples(self, run_id: str, version: str) -> list[SampleRecord]:
        """The ``samples`` records of this case: one per scorer (or the call, without any)."""
        case, output = self.case, self.output
        usage = output.usage
        common: dict[str, Any] = {
            "run_id": run_id,
            "case_id": case.id,
            "output": output.text,
            "latency_s": output.latency_s,
            "cost_usd": output.cost_usd,
            "tags": tuple(case.tags),
            "version": version,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "model": output.model,
            "attempts": output.attempts,
            "usage_counted": output.usage_counted,
            "cached": output.cached,
            "tool_calls": list(output.tool_calls) if output.tool_calls else None,
        }
        if not self.scores:
            return [
                SampleRecord(
                    metric="call",
                    value=None,
                    passed=None,
                    explanation="",
                    error=output.error,
                    **common,
                )
            ]
        return [
            SampleRecord(
                metric=name,
                value=score.value,
                passed=score.passed,
                explanation=score.explanation,
                evidence=score.metadata or None,
                error=score.error,
                **common,
            )
            for name, score in self.scores.items()
        ]


@dataclass(frozen=True)
class RunResult:
    """Everything a run measured and decided: its record, and every case in memory."""

    record: RunRecord
    """What the store keeps of the run (header, counts, metrics with their gates, verdict)."""
    cases: list[CaseResult]
    """Every case, for a run summarized in memory; empty for a run streamed to the store."""
    metrics: dict[str, MetricValue]
    gates: list[GateResult] = field(default_factory=list)
    tally: RunTally = field(default_factory=lambda: RunTally(()))
    """What the cases add up to (counts, and each metric's values)."""

    @property
    def verdict(self) -> Verdict:
        """``fail`` if any gate failed, ``pass`` if all passed, else ``inconclusive``."""
        return overall_verdict(self.gates)

    def breaches(self, include_inconclusive: bool = False) -> list[GateResult]:
        """Gates that failed (and inconclusive ones, when asked)."""
        bad = {Verdict.FAIL, Verdict.INCONCLUSIVE} if include_inconclusive else {Verdict.FAIL}
        return [g for g in self.gates if g.verdict in bad]

    def samples(self) -> list[SampleRecord]:
        """Every ``samples`` record of the run."""
        run_id, version = self.record.run_id, self.record.version
        return [s for case in self.cases for s in case.samples(run_id, version)]


def scoring_fingerprint(contract: Contract) -> str:
    """A hash of everything that shapes the scores besides the outputs.

    The suites, judge, policy, cost and CI-repeat settings, the content of the rule packs and
    of the offline judge's fitted parameters, and impactgate's version. Two runs of the same
    agent version and dataset with the same fingerprint score identically, so a stored run can
    stand in for a new one (``impactgate ci``).
    """
    import hashlib

    from evals.judges._offline import PARAMS_FILE

    evals = contract.evals
    digest = hashlib.sha256()
    for part in (
        evals.suites,
        evals.grounding.model_dump(mode="json"),
        evals.policy.model_dump(mode="json"),
        evals.cost.model_dump(mode="json"),
        code_version(None),
    ):
        digest.update(repr(part).encode())
    files = [contract.resolve(p) for p in evals.policy.rule_packs]
    if evals.grounding.judge == "offline":
        files.append(PARAMS_FILE)
    for path in files:
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()


@dataclass(frozen=True)
class EvalPlan:
    """A contract made ready to run: its dataset, target and scorers, all validated."""

    contract: Contract
    dataset: Dataset
    target: Target
    scorers: dict[str, BatchScorer]
    masker: Masker
    """Masks what the run stores (``evals.store_outputs``)."""


def prepare(contract: Contract, version: str | None = None) -> EvalPlan:
    """Load the dataset, build the target (at ``version`` if given) and the scorers.

    Raises:
        UserError: anything the contract points at is missing or invalid.
    """
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    target = build_target(contract, dataset)
    if version is not None and version != target.version().label:
        target = target.at_version(version)
    lacking, first = 0, ""
    for batch in dataset.batches():  # a large dataset is read in batches, never held whole
        target.check(batch)
        if "rag" in contract.evals.suites:
            ids = [c.id for c in batch if not c.reference]
            lacking, first = lacking + len(ids), first or (ids[0] if ids else "")
    if lacking:
        raise UserError.single(
            display_path(contract.source),
            "evals.suites",
            f"suite 'rag' needs a 'reference' on every case; {lacking} of {len(dataset)} "
            f"cases in {display_path(dataset.path)} lack one (first: {first}). Add "
            "references or drop 'rag'",
        )
    return EvalPlan(contract, dataset, target, build_scorers(contract), build_masker(contract))


def generate(
    target: Target,
    cases: Sequence[Case],
    progress: Progress | None = None,
    *,
    cache: OutputCache | None = None,
    journal: RunJournal | None = None,
    produce: Produce | None = None,
) -> list[Output]:
    """Produce one output per case (failures recorded, never raised), paying nothing twice.

    Cases already in ``journal`` (a resumed run) are taken from it, except those whose call
    failed for a reason that may pass (``Output.retryable``), which are called again; then, for
    targets whose
    version hash covers everything that shapes an output, cases the ``cache`` has for this
    version and case content. Only the rest are called. Every new output is journaled the
    moment it exists and cached if it succeeded.

    Args:
        target: produces the outputs.
        cases: in the order outputs are returned.
        progress: called with the number of cases done, reused ones included.
        cache: the output cache, or ``None`` to call every case.
        journal: the run's journal, or ``None`` for a run that cannot be resumed.
        produce: calls the cases neither the journal nor the cache has, like
            ``target.generate`` (the default) does: shards over worker processes
            (:func:`evals.runs.generate_in_processes`) or over a task runner's workers. Its
            outputs are journaled and cached here, in this process, as it hands them over.
    """
    fingerprints = {case.id: case_fingerprint(case) for case in cases}
    done: dict[str, Output] = {}
    if journal is not None:
        for case_id, (case_hash, output) in journal.outputs().items():
            if fingerprints.get(case_id) == case_hash and not output.retryable:
                done[case_id] = output
    version = target.version().hash
    if not target.cacheable:
        cache = None
    if cache is not None:
        wanted = [(case.id, fingerprints[case.id]) for case in cases if case.id not in done]
        for case_id, output in cache.get_many(version, wanted).items():
            done[case_id] = output
            if journal is not None:
                journal.record(output, fingerprints[case_id])
    todo = [case for case in cases if case.id not in done]
    offset = len(done)
    if progress is not None and offset:
        progress(offset)

    def on_output(output: Output) -> None:
        case_hash = fingerprints[output.case_id]
        if journal is not None:
            journal.record(output, case_hash)
        if cache is not None:
            cache.put(version, case_hash, output)

    def advance(finished: int) -> None:
        if progress is not None:
            progress(offset + finished)

    try:
        fresh = (produce or target.generate)(todo, advance, on_output) if todo else []
    finally:
        if cache is not None:
            cache.flush()
    if [o.case_id for o in fresh] != [c.id for c in todo]:
        raise RuntimeError(f"target {target.kind} returned outputs out of order or incomplete")
    by_id = done | {o.case_id: o for o in fresh}
    return [by_id[case.id] for case in cases]


def generation_notes(outputs: Sequence[Output], resumed: int = 0) -> list[str]:
    """What a reader of the run should know about where its outputs came from."""
    tally = RunTally(())
    tally.count(outputs)
    return tally.notes(resumed)


def redact_score(score: Score, redactor: Redactor) -> Score:
    """A score with every secret removed from its explanation, evidence and error."""
    if not redactor:
        return score
    return replace(
        score,
        explanation=redactor.text(score.explanation),
        metadata=redactor.value(score.metadata),
        error=redactor.optional(score.error),
    )


def score(
    scorers: Mapping[str, BatchScorer], cases: Sequence[Case], outputs: Sequence[Output]
) -> dict[str, list[Score]]:
    """Run every scorer over the batch; crashes become recorded errors."""
    return {name: run_scorer(name, fn, cases, outputs) for name, fn in scorers.items()}


def _moved(violation: Any, masked: Masked) -> Any:
    """A policy finding in the output, pointed at where its span now is in the masked output."""
    if not isinstance(violation, dict) or violation.get("where") != "output":
        return violation
    start, end = violation.get("start"), violation.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        return violation
    new_start, new_end = masked.move(start, end)
    return {**violation, "start": new_start, "end": new_end}


def stored_view(
    output: Output, scores: dict[str, Score], mode: str, masker: Masker | None
) -> tuple[Output, dict[str, Score]]:
    """What the store may keep of one case (``evals.store_outputs``), once it is scored.

    ``masked``: personal data and secrets in the output, tool calls, explanations, evidence
    and errors are replaced by masked forms, and the policy scorer's findings in the output
    point at their masked spans; ``none``: the same, without the output; ``raw``: as is.
    """
    if mode == "raw" or masker is None or not masker.active:
        return (replace(output, text=None) if mode == "none" else output), scores
    masked = masker.mask_many([output.text or ""])[0]
    policy = scores.get("policy_violation")
    if policy is not None and isinstance(policy.metadata.get("violations"), list):
        moved = [_moved(v, masked) for v in policy.metadata["violations"]]
        scores = {
            **scores,
            "policy_violation": replace(policy, metadata={**policy.metadata, "violations": moved}),
        }
    kept = replace(
        output,
        text=None if mode == "none" or output.text is None else masked.text,
        tool_calls=masker.value(output.tool_calls),
        error=masker.text(output.error),
    )
    return kept, {
        name: replace(
            score,
            explanation=masker.text(score.explanation) or "",
            metadata=masker.value(score.metadata),
            error=masker.text(score.error),
        )
        for name, score in scores.items()
    }


def summarize(
    contract: Contract,
    draft: RunRecord,
    cases: Sequence[Case],
    outputs: Sequence[Output],
    scores: Mapping[str, Sequence[Score]],
    redactor: Redactor | None = None,
    masker: Masker | None = None,
    telemetry: Mapping[str, MetricValue] | None = None,
    *,
    judge_check: JudgeCheck | None = None,
    policy_check: MetricValue | None = None,
    estimate: Sequence[bool] | None = None,
    population: Mapping[str, MetricValue] | None = None,
    resumed: Collection[str] = (),
) -> RunResult:
    """Aggregate scores into metrics with intervals and hold them against the level's gates.

    Args:
        contract: the contract whose gates apply.
        draft: the run's record without metrics (header, times, counts); the result's
            record is this one with the metrics, their gates and the verdict filled in.
        cases: in the order of ``outputs`` and of each scorer's scores.
        outputs: one per case.
        scores: scorer name → one score per case.
        redactor: the secrets of the run are removed from every output and score first, so
            nothing recorded from the result can carry them.
        masker: masks personal data in what is kept, once scored (``stored_view``).
        telemetry: the scorecard's metrics (``evals.scorecard``), for the gates on workflow,
            adoption and outcome metrics; a gated one missing is not measured, and fails.
        judge_check: the grounding judge against the owner's labels: ``judge_agreement`` is
            measured from it and its provenance stored with the run. Without one, a level
            whose gates include ``judge_agreement`` decides nothing on that judge
            (:func:`unchecked_judge_gates`).
        policy_check: ``policy_agreement``, the rule packs against the owner's policy labels
            (``evals.labelling.check_policy``); without one, a gate on it is inconclusive.
        estimate: per case, whether it enters the metrics (default: every case). A production
            run scores the traces it kept on purpose (errors, escalations) but estimates from
            its proportional sample only.
        population: metrics measured on the whole population rather than on these cases
            (a production window's error rate, cost and latency); they replace the
            sample's.
        resumed: ids of the cases a resumed run took from its journal (not called now).
    """
    results = case_results(contract, cases, outputs, scores, redactor, masker)
    tally = RunTally(tuple(contract.evals.suites))
    tally.add(results, estimate=estimate, resumed=resumed)
    result = conclude(
        contract,
        draft,
        tally,
        telemetry,
        judge_check=judge_check,
        policy_check=policy_check,
        population=population,
    )
    return replace(result, cases=results)


def case_results(
    contract: Contract,
    cases: Sequence[Case],
    outputs: Sequence[Output],
    scores: Mapping[str, Sequence[Score]],
    redactor: Redactor | None = None,
    masker: Masker | None = None,
) -> list[CaseResult]:
    """A batch of scored cases as the store keeps them: secrets removed, personal data masked.

    ``cases``, ``outputs`` and each scorer's scores are in the same order; see
    :func:`summarize` for ``redactor`` and ``masker``.
    """
    if redactor:
        outputs = [redactor.output(o) for o in outputs]
        scores = {n: [redact_score(s, redactor) for s in ss] for n, ss in scores.items()}
    results = []
    for i, (case, output) in enumerate(zip(cases, outputs, strict=True)):
        kept, case_scores = stored_view(
            output,
            {name: scores[name][i] for name in scores},
            contract.evals.store_outputs,
            masker,
        )
        results.append(CaseResult(case, kept, case_scores))
    return results


def conclude(
    contract: Contract,
    draft: RunRecord,
    tally: RunTally,
    telemetry: Mapping[str, MetricValue] | None = None,
    *,
    judge_check: JudgeCheck | None = None,
    policy_check: MetricValue | None = None,
    population: Mapping[str, MetricValue] | None = None,
) -> RunResult:
    """The run's metrics with their intervals, held against the level's gates.

    From the tally of every case (:func:`summarize` for the arguments); the result holds no
    case (``cases`` is empty): a streamed run wrote them to the store batch by batch.
    """
    autonomy = contract.autonomy
    metrics: dict[str, MetricValue] = {}
    for name in TALLIED:
        values = tally.metric_values(name)
        if values is not None:
            metrics[name] = aggregate(METRICS[name], values, autonomy.confidence)
    metrics.update(population or {})
    level_gates = contract.gates(draft.level)  # type: ignore[arg-type]
    metrics.update(telemetry or {})  # kept with the run: the next level's gates read them too
    for name in level_gates:
        if METRICS[name].source == "telemetry":
            metrics[name] = (telemetry or {}).get(name) or MetricValue(
                name, None, None, None, 0, 0, "none", autonomy.confidence,
                "not measured: no production telemetry (a telemetry block and a results root)",
            )  # fmt: skip
    if judge_check is not None:
        metrics[AGREEMENT] = judge_check.metric()
    if policy_check is not None:
        metrics[POLICY_AGREEMENT] = policy_check
    wanted = level_gates
    if draft.source != "production":  # production-only metrics are the production run's to gate
        wanted = {k: v for k, v in wanted.items() if k not in PRODUCTION_METRICS}
    gates = evaluate_gates(
        wanted,
        metrics,
        autonomy.min_samples,
        frozenset(autonomy.rollback.metrics),
    )
    gates = labelled_gates(gates, metrics.keys(), contract.agent, draft.level, judge_check)
    by_gate = {g.metric: g for g in gates}
    names = list(dict.fromkeys([*metrics, *by_gate]))
    record = replace(
        draft,
        n_cases=tally.cases,
        n_cached=tally.cached,
        verdict=str(overall_verdict(gates)),
        metrics={
            name: MetricRecord.of(name, metrics.get(name), by_gate.get(name)) for name in names
        },
        calibration=judge_check.provenance if judge_check is not None else None,
    )
    return RunResult(record, [], metrics, gates, tally)


JUDGED = frozenset(
    name for name, spec in METRICS.items() if spec.suite in ("grounding", "hallucination")
) - {AGREEMENT}
"""Metrics the grounding judge's verdicts decide."""


def checked_judge_gates(
    gates: Sequence[GateResult], check: JudgeCheck | None, level: str
) -> list[GateResult]:
    """Gates of a level that needs judge agreement, when the judge has labels.

    The ``judge_agreement`` gate's reason says, in words, what the judge did with the owner's
    labels and what to do (:meth:`JudgeCheck.explain`; kept as it is without ``check``, as when
    a stored run's gates are held again). Until that gate passes, the judge is no better than
    unchecked at this level: every pass of a metric it decides is inconclusive; failures stand.
    """
    agreement = next((g for g in gates if g.metric == AGREEMENT), None)
    if agreement is None:
        return list(gates)
    passed = agreement.verdict == Verdict.PASS
    doubt = (
        "disagrees with your labels" if agreement.verdict == Verdict.FAIL
        else "not yet shown to agree with your labels"
    )  # fmt: skip
    out = []
    for gate in gates:
        if (
            gate.metric == AGREEMENT
            and check is not None
            and gate.observed is not None
            and gate.threshold.min is not None
        ):
            gate = replace(gate, reason=check.explain(gate.threshold.min, level, str(gate.verdict)))
        elif gate.metric in JUDGED and gate.verdict == Verdict.PASS and not passed:
            gate = replace(
                gate,
                verdict=Verdict.INCONCLUSIVE,
                reason=f"{gate.reason}, but by a grounding judge {doubt} (judge_agreement); "
                "this level needs one that agrees",
            )
        out.append(gate)
    return out


def unchecked_policy_gates(gates: Sequence[GateResult], agent: str) -> list[GateResult]:
    """A gate on ``policy_agreement`` when nobody labelled the policy findings: inconclusive."""
    return [
        replace(g, verdict=Verdict.INCONCLUSIVE, reason=unlabelled_policy_note(agent))
        if g.metric == POLICY_AGREEMENT
        else g
        for g in gates
    ]


def labelled_gates(
    gates: Sequence[GateResult],
    measured: Collection[str],
    agent: str,
    level: str,
    check: JudgeCheck | None = None,
) -> list[GateResult]:
    """A level's gates with the rules for the owner's labels (a run's, or a stored run's).

    ``measured``: the metrics the run measured (``judge_agreement`` and ``policy_agreement``
    are measured exactly when the owner has labels of that kind); ``check``: the run's check
    of its judge, which words the agreement gate (a stored run's gate keeps its words).
    """
    gates = (
        checked_judge_gates(gates, check, level)
        if AGREEMENT in measured
        else unchecked_judge_gates(gates, agent)
    )
    if POLICY_AGREEMENT not in measured:
        gates = unchecked_policy_gates(gates, agent)
    return list(gates)


def unchecked_judge_gates(gates: Sequence[GateResult], agent: str = "AGENT") -> list[GateResult]:
    """Gates of a level that needs judge agreement, when the judge has no labels.

    A level whose gates include ``judge_agreement`` says its grounding verdicts must come from
    a judge checked against the owner's labels. With none, that gate is inconclusive (never a
    failure of the agent, never a pass), and so is every pass of a metric the judge decides;
    failures stand.
    """
    if not any(g.metric == AGREEMENT for g in gates):
        return list(gates)
    out = []
    for gate in gates:
        if gate.metric == AGREEMENT:
            gate = replace(
                gate,
                verdict=Verdict.INCONCLUSIVE,
                reason="nobody has checked the grounding judge against your own labels yet: "
                f"export answers to label (impactgate labels export {agent} --n 60 --out "
                "labels.csv), label them and import them (impactgate labels import labels.csv "
                "--by YOU)",
            )
        elif gate.metric in JUDGED and gate.verdict == Verdict.PASS:
            gate = replace(
                gate,
                verdict=Verdict.INCONCLUSIVE,
                reason=f"{gate.reason}, but by a grounding judge nobody has checked against "
                "your labels; this level needs one that has been",
            )
        out.append(gate)
    return out
