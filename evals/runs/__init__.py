"""Runs: evaluating an agent version on a dataset version, piece by piece or end to end."""

from evals.runs._run import (
    TRIGGERS,
    CaseResult,
    EvalPlan,
    RunInfo,
    RunResult,
    Trigger,
    code_version,
    evaluate,
    generate,
    new_run_id,
    prepare,
    score,
    summarize,
)

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
