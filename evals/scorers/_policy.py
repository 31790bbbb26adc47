"""Policy violations: rule packs applied to what each case's agent saw, said and did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, get_args

from evals.contract import Contract
from evals.dataset import Case
from evals.errors import UserError, display_path
from evals.policy import (
    Masker,
    PolicyEngine,
    Severity,
    Subject,
    Violation,
    load_rule_pack,
    tool_schemas_from_files,
)
from evals.scorers._score import BatchScorer, Score, scorer
from evals.targets import Output

__all__ = ["build_masker", "build_policy_engine", "policy_violation"]

_SHOWN = 3


def _explain(violations: list[Violation]) -> str:
    rules = sorted({v.rule for v in violations})
    worst = max((v.severity for v in violations), key=get_args(Severity).index)
    shown = " | ".join(v.describe() for v in violations[:_SHOWN])
    more = f" | and {len(violations) - _SHOWN} more" if len(violations) > _SHOWN else ""
    return f"{len(violations)} violation(s) of {', '.join(rules)} (worst: {worst}): {shown}{more}"


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


def build_masker(contract: Contract) -> Masker:
    """The masker of what a run stores (see ``evals.store_outputs``).

    The personal-data and secret rules of the contract's packs, with its allowlist.

    Raises:
        UserError: a rule pack is missing or invalid.
    """
    config = contract.evals.policy
    packs = [load_rule_pack(contract.resolve(p)) for p in config.rule_packs]
    return Masker(packs, allow=config.allow, source=display_path(contract.source))


def _policy_options(contract: Contract) -> dict[str, Any]:
    return {"engine": build_policy_engine(contract)}


@scorer(name="policy_violation", options=_policy_options)
def policy_violation(*, engine: PolicyEngine) -> BatchScorer:
    """1 when the case breaks any rule, else 0; each violation named, its span masked.

    Rules read the output, the case input and the retrieved contexts (each rule's ``scope``)
    and the tool calls (``Output.tool_calls``, else ``Case.metadata["tool_calls"]``).
    """

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        subjects = [Subject.of(c, o) for c, o in zip(cases, outputs, strict=True)]
        scores = []
        for violations in engine.check_many(subjects):
            evidence = {"violations": [asdict(v) for v in violations]}
            if violations:
                scores.append(Score(1.0, False, _explain(violations), evidence))
            else:
                scores.append(Score(0.0, True, "no rule matched", evidence))
        return scores

    return score
