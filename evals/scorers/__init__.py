"""Scorers: case + output → Score, each registered with the options a contract gives it.

Importing this package registers every built-in scorer (``@scorer``); ``build_scorers``
reads the registry. Which suite runs a scorer and which metrics aggregate it live in the
metrics registry (``evals.metrics.METRICS``).
"""

from __future__ import annotations

from evals.scorers._cost import cost, litellm_price_table, price_for
from evals.scorers._grounding import faithfulness, grounding_judge, grounding_options, hallucination
from evals.scorers._latency import latency
from evals.scorers._policy import build_masker, build_policy_engine, policy_violation
from evals.scorers._rag import (
    answer_correctness,
    answer_relevance,
    context_precision,
    context_recall,
)
from evals.scorers._score import (
    BatchScorer,
    Options,
    RegisteredScorer,
    Score,
    ScorerFactory,
    build_scorers,
    registered_scorers,
    run_scorer,
    scorer,
)

__all__ = [
    "BatchScorer",
    "Options",
    "RegisteredScorer",
    "Score",
    "ScorerFactory",
    "answer_correctness",
    "answer_relevance",
    "build_masker",
    "build_policy_engine",
    "build_scorers",
    "context_precision",
    "context_recall",
    "cost",
    "faithfulness",
    "grounding_judge",
    "grounding_options",
    "hallucination",
    "latency",
    "litellm_price_table",
    "policy_violation",
    "price_for",
    "registered_scorers",
    "run_scorer",
    "scorer",
]
