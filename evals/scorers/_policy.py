"""Policy violations: rule packs applied to what each case's agent saw, said and did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import get_args

from evals.dataset import Case
from evals.policy import PolicyEngine, Severity, Subject, Violation
from evals.scorers._score import BatchScorer, Score, scorer
from evals.targets import Output

__all__ = ["policy_violation"]

_SHOWN = 3


def _explain(violations: list[Violation]) -> str:
    rules = sorted({v.rule for v in violations})
    worst = max((v.severity for v in violations), key=get_args(Severity).index)
    shown = " | ".join(v.describe() for v in violations[:_SHOWN])
    more = f" | and {len(violations) - _SHOWN} more" if len(violations) > _SHOWN else ""
    return f"{len(violations)} violation(s) of {', '.join(rules)} (worst: {worst}): {shown}{more}"


@scorer(name="policy_violation", suite="policy")
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
