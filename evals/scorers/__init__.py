"""Scorers: case + output → Score. One per suite; each explains itself."""

from __future__ import annotations

from evals.contract import Contract
from evals.errors import UserError, display_path
from evals.metrics import Suite
from evals.policy import PolicyEngine, load_rule_pack, tool_schemas_from_files
from evals.scorers._cost import cost, litellm_price_table, price_for
from evals.scorers._grounding import faithfulness, grounding_judge, hallucination
from evals.scorers._latency import latency
from evals.scorers._policy import policy_violation
from evals.scorers._rag import (
    answer_correctness,
    answer_relevance,
    context_precision,
    context_recall,
)
from evals.scorers._score import (
    BatchScorer,
    Score,
    ScorerFactory,
    registered_scorers,
    run_scorer,
    scorer,
)

__all__ = [
    "SUITE_SCORERS",
    "BatchScorer",
    "Score",
    "ScorerFactory",
    "answer_correctness",
    "answer_relevance",
    "build_policy_engine",
    "build_scorers",
    "context_precision",
    "context_recall",
    "cost",
    "faithfulness",
    "grounding_judge",
    "hallucination",
    "latency",
    "litellm_price_table",
    "policy_violation",
    "price_for",
    "registered_scorers",
    "run_scorer",
    "scorer",
]

SUITE_SCORERS: dict[Suite, tuple[str, ...]] = {
    "grounding": ("faithfulness",),
    "hallucination": ("hallucination",),
    "policy": ("policy_violation",),
    "cost": ("cost",),
    "latency": ("latency",),
    "rag": ("answer_relevance", "answer_correctness", "context_precision", "context_recall"),
}
"""The scorers behind each suite."""


def build_policy_engine(contract: Contract) -> PolicyEngine:
    """The contract's rule packs with its allow and deny lists, limits and guarded secrets.

    Raises:
        UserError: a rule pack, the system prompt or a tool schema is missing or invalid, or a
            rule needs a setting the contract does not give.
    """
    config = contract.evals.policy
    source = display_path(contract.source)
    packs = [load_rule_pack(contract.resolve(p)) for p in config.rule_packs]
    system_prompt = None
    if config.system_prompt is not None:
        path = contract.resolve(config.system_prompt)
        try:
            system_prompt = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError.single(
                source,
                "evals.policy.system_prompt",
                f"cannot read {config.system_prompt}: {exc.strerror}",
            ) from None
    return PolicyEngine(
        packs,
        allow=config.allow,
        deny=config.deny,
        disable=config.disable,
        canaries=config.canaries,
        system_prompt=system_prompt,
        tools=config.tools,
        max_tool_depth=config.max_tool_depth,
        max_tool_calls=config.max_tool_calls,
        tool_schemas=tool_schemas_from_files(config.tool_schemas, contract.resolve, source),
        source=source,
    )


def build_scorers(contract: Contract) -> dict[str, BatchScorer]:
    """Scorer name → configured batch scorer, for every suite the contract runs."""
    evals = contract.evals
    built: dict[str, BatchScorer] = {}
    for suite in evals.suites:
        if suite in ("grounding", "hallucination"):
            factory = faithfulness if suite == "grounding" else hallucination
            built[SUITE_SCORERS[suite][0]] = factory(config=evals.grounding)
        elif suite == "rag":
            built["answer_relevance"] = answer_relevance()
            built["answer_correctness"] = answer_correctness(config=evals.grounding)
            built["context_precision"] = context_precision(config=evals.grounding)
            built["context_recall"] = context_recall(config=evals.grounding)
        elif suite == "policy":
            built["policy_violation"] = policy_violation(engine=build_policy_engine(contract))
        elif suite == "cost":
            built["cost"] = cost(model=evals.cost.model, prices=evals.cost.prices)
        else:
            built["latency"] = latency()
    return built
