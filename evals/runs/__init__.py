"""Runs: evaluating an agent version on a dataset version, piece by piece or end to end."""

from evals.runs._generate_shards import (
    GenerationShard,
    generate_in_processes,
    generate_shard,
    generation_shards,
    loaded_targets,
)
from evals.runs._resume import check_resumable, open_unfinished_run
from evals.runs._run import (
    TRIGGERS,
    CaseResult,
    EvalPlan,
    Produce,
    RunResult,
    Trigger,
    code_version,
    generate,
    generation_notes,
    labelled_gates,
    new_run_id,
    prepare,
    redact_score,
    score,
    scoring_fingerprint,
    summarize,
)
from evals.runs._session import Perform, RunOutcome, RunSession, evaluate
from evals.runs._shards import loaded_scorer_sets, score_shard

__all__ = [
    "TRIGGERS",
    "CaseResult",
    "EvalPlan",
    "GenerationShard",
    "Perform",
    "Produce",
    "RunOutcome",
    "RunResult",
    "RunSession",
    "Trigger",
    "check_resumable",
    "code_version",
    "evaluate",
    "generate",
    "generate_in_processes",
    "generate_shard",
    "generation_notes",
    "generation_shards",
    "labelled_gates",
    "loaded_scorer_sets",
    "loaded_targets",
    "new_run_id",
    "open_unfinished_run",
    "prepare",
    "redact_score",
    "score",
    "score_shard",
    "scoring_fingerprint",
    "summarize",
]
