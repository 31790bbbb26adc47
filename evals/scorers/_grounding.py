"""Faithfulness and hallucination, both read from one grounding judgement per answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evals.contract import Contract, GroundingConfig
from evals.dataset import Case
from evals.judges import GroundingJudge, GroundingVerdict, build_judge
from evals.scorers._score import BatchScorer, Score, scorer
from evals.targets import Output

__all__ = ["faithfulness", "grounding_judge", "grounding_options", "hallucination"]


_JUDGES: dict[str, GroundingJudge] = {}


def grounding_judge(config: GroundingConfig | None = None) -> GroundingJudge:
    """One judge per configuration, shared by the scorers so each answer is judged once."""
    config = config or GroundingConfig()
    key = config.model_dump_json()
    if key not in _JUDGES:
        _JUDGES[key] = build_judge(config)
    return _JUDGES[key]


def _verdicts(
    judge: GroundingJudge, cases: Sequence[Case], outputs: Sequence[Output]
) -> list[GroundingVerdict]:
    items = [(o.text or "", o.contexts_for(c)) for c, o in zip(cases, outputs, strict=True)]
    return judge.judge(items)


def _describe(verdict: GroundingVerdict, limit: int = 3) -> str:
    parts = []
    for claim in verdict.unsupported[:limit]:
        parts.append(
            f'"{claim.text}" (support {claim.probability:.2f}: {"; ".join(claim.reasons[1:]) or claim.reasons[0]})'
        )
    more = len(verdict.unsupported) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def grounding_options(contract: Contract) -> dict[str, Any]:
    """The grounding judge's configuration, for every scorer that reads a verdict.

    A local NLI model folder is resolved against the project root (as ``validate`` checks
    it), not against the folder impactgate happens to run in.
    """
    config = contract.evals.grounding
    local = contract.local_model()
    if local is not None:
        config = config.model_copy(update={"model": str(local)})
    return {"config": config}


def _scorer(
    config: GroundingConfig | None, read: Callable[[GroundingVerdict], Score]
) -> BatchScorer:
    """A batch scorer that judges each answer once and reads a score off the verdict."""
    grounding = grounding_judge(config)

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        return [
            Score.failed(verdict.error) if verdict.error else read(verdict)
            for verdict in _verdicts(grounding, cases, outputs)
        ]

    return score


def _faithfulness(verdict: GroundingVerdict) -> Score:
    n, unsupported = len(verdict.claims), len(verdict.unsupported)
    if not n:
        explanation = "no factual claims to check"
    elif not unsupported:
        explanation = f"all {n} claims supported by the contexts"
    else:
        explanation = f"{unsupported} of {n} claims not supported: {_describe(verdict)}"
    evidence = verdict.to_dict()
    value = verdict.support_share
    if verdict.repeat_shares:
        value = sum(verdict.repeat_shares) / len(verdict.repeat_shares)
        evidence["repeats"] = verdict.repeat_shares
        explanation += f" (mean over {len(verdict.repeat_shares)} judge repeats: {value:.2f})"
    return Score(value, not unsupported, explanation, evidence)


def _hallucination(verdict: GroundingVerdict) -> Score:
    if verdict.repeat_flags:
        # The share of repeats that found an unsupported claim; a majority makes it an event.
        share = sum(verdict.repeat_flags) / len(verdict.repeat_flags)
        evidence = {**verdict.to_dict(), "repeats": [float(f) for f in verdict.repeat_flags]}
        told = f"{sum(verdict.repeat_flags)} of {len(verdict.repeat_flags)} judge repeats found an unsupported claim"
        return Score(share, share < 0.5, told, evidence)
    if verdict.unsupported:
        return Score(1.0, False, f"unsupported claim: {_describe(verdict, 1)}", verdict.to_dict())
    return Score(0.0, True, "every claim is supported", verdict.to_dict())


@scorer(name="faithfulness", options=grounding_options)
def faithfulness(*, config: GroundingConfig | None = None) -> BatchScorer:
    """Share of an answer's claims that its contexts support."""
    return _scorer(config, _faithfulness)


@scorer(name="hallucination", options=grounding_options)
def hallucination(*, config: GroundingConfig | None = None) -> BatchScorer:
    """1 when the answer has at least one claim its contexts do not support, else 0."""
    return _scorer(config, _hallucination)
