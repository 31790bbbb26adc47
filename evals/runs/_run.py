"""A run: one evaluation of one agent version on one dataset version, and its pieces.

The pieces (`prepare`, `generate`, `score`, `summarize`) are separate so an orchestrator can
put each in its own task; `evaluate` composes them for a notebook or a test.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Literal

from evals.contract import Contract, Level
from evals.dataset import Case, Dataset, load_dataset
from evals.errors import UserError, display_path
from evals.gates import GateResult, Verdict, evaluate_gates
from evals.metrics import METRICS, MetricValue, aggregate
from evals.scorers import BatchScorer, Score, build_scorers, run_scorer
from evals.targets import AgentVersion, Output, Progress, Target, build_target

__all__ = [
    "TRIGGERS",
    "CaseResult",
    "EvalPlan",
    "RunInfo",
    "RunResult",
    "Trigger",
    "code_version",
    "evaluate",
    "generate",
    "new_run_id",
    "prepare",
    "score",
    "summarize",
]

Trigger = Literal["nightly", "promotion", "ci", "manual"]
TRIGGERS: tuple[Trigger, ...] = ("nightly", "promotion", "ci", "manual")


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
class RunInfo:
    """What was evaluated, when, and why."""

    run_id: str
    agent: str
    version: AgentVersion
    dataset: str
    """Dataset path as written in the contract."""
    dataset_hash: str
    trigger: Trigger
    level: Level
    """The autonomy level whose gates were applied."""
    started_at: datetime
    finished_at: datetime
    code_version: str


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


@dataclass(frozen=True)
class RunResult:
    """Everything a run measured and decided."""

    info: RunInfo
    cases: list[CaseResult]
    metrics: dict[str, MetricValue]
    gates: list[GateResult] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """``fail`` if any gate failed, ``pass`` if all passed, else ``inconclusive``."""
        verdicts = {g.verdict for g in self.gates}
        if Verdict.FAIL in verdicts:
            return Verdict.FAIL
        if verdicts <= {Verdict.PASS}:
            return Verdict.PASS
        return Verdict.INCONCLUSIVE

    def breaches(self, include_inconclusive: bool = False) -> list[GateResult]:
        """Gates that failed (and inconclusive ones, when asked)."""
        bad = {Verdict.FAIL, Verdict.INCONCLUSIVE} if include_inconclusive else {Verdict.FAIL}
        return [g for g in self.gates if g.verdict in bad]


@dataclass(frozen=True)
class EvalPlan:
    """A contract made ready to run: its dataset, target and scorers, all validated."""

    contract: Contract
    dataset: Dataset
    target: Target
    scorers: dict[str, BatchScorer]


def prepare(contract: Contract, version: str | None = None) -> EvalPlan:
    """Load the dataset, build the target (at ``version`` if given) and the scorers.

    Raises:
        UserError: anything the contract points at is missing or invalid.
    """
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    if "rag" in contract.evals.suites:
        lacking = [c.id for c in dataset.cases if not c.reference]
        if lacking:
            raise UserError.single(
                display_path(contract.source),
                "evals.suites",
                f"suite 'rag' needs a 'reference' on every case; {len(lacking)} of {len(dataset)} "
                f"cases in {display_path(dataset.path)} lack one (first: {lacking[0]}). Add "
                "references or drop 'rag'",
            )
    target = build_target(contract, dataset)
    if version is not None and version != target.version().label:
        target = target.at_version(version)
    return EvalPlan(contract, dataset, target, build_scorers(contract))


def generate(
    target: Target, cases: Sequence[Case], progress: Progress | None = None
) -> list[Output]:
    """Produce one output per case (failures recorded, never raised)."""
    outputs = target.generate(cases, progress)
    if [o.case_id for o in outputs] != [c.id for c in cases]:
        raise RuntimeError(f"target {target.kind} returned outputs out of order or incomplete")
    return outputs


def score(
    scorers: Mapping[str, BatchScorer], cases: Sequence[Case], outputs: Sequence[Output]
) -> dict[str, list[Score]]:
    """Run every scorer over the batch; crashes become recorded errors."""
    return {name: run_scorer(name, fn, cases, outputs) for name, fn in scorers.items()}


def _metric_values(
    name: str, cases: Sequence[CaseResult], suites: Sequence[str]
) -> list[float | None] | None:
    spec = METRICS[name]
    if spec.kind == "count_rate":
        return [1.0 if c.errored else 0.0 for c in cases]
    if spec.suite not in suites:
        return None
    assert spec.scorer is not None
    return [
        c.scores[spec.scorer].value if c.scores[spec.scorer].error is None else None for c in cases
    ]


def summarize(
    contract: Contract,
    info: RunInfo,
    cases: Sequence[Case],
    outputs: Sequence[Output],
    scores: Mapping[str, Sequence[Score]],
) -> RunResult:
    """Aggregate scores into metrics with intervals and hold them against the level's gates."""
    results = [
        CaseResult(case, output, {name: scores[name][i] for name in scores})
        for i, (case, output) in enumerate(zip(cases, outputs, strict=True))
    ]
    autonomy = contract.autonomy
    metrics: dict[str, MetricValue] = {}
    for name in METRICS:
        values = _metric_values(name, results, contract.evals.suites)
        if values is not None:
            metrics[name] = aggregate(METRICS[name], values, autonomy.confidence)
    gates = evaluate_gates(
        contract.gates(info.level),
        metrics,
        autonomy.min_samples,
        frozenset(autonomy.rollback.metrics),
    )
    return RunResult(info, results, metrics, gates)


def evaluate(
    contract: Contract,
    *,
    level: Level | None = None,
    version: str | None = None,
    trigger: Trigger = "manual",
    progress: Progress | None = None,
) -> RunResult:
    """Evaluate a contract's agent end to end, without storing anything.

    Args:
        contract: the loaded contract.
        level: gates of this level are applied; defaults to the contract's level.
        version: evaluate this version instead of the one the target declares.
        trigger: why the run happens.
        progress: called with the number of cases answered so far.
    """
    started = datetime.now(UTC)
    plan = prepare(contract, version)
    cases = list(plan.dataset.cases)
    outputs = generate(plan.target, cases, progress)
    scores = score(plan.scorers, cases, outputs)
    info = RunInfo(
        run_id=new_run_id(started),
        agent=contract.agent,
        version=plan.target.version(),
        dataset=contract.evals.dataset,
        dataset_hash=plan.dataset.content_hash,
        trigger=trigger,
        level=level or contract.autonomy.level,
        started_at=started,
        finished_at=datetime.now(UTC),
        code_version=code_version(contract.root),
    )
    return summarize(contract, info, cases, outputs, scores)
