"""Retrieval and answer quality without an LLM.

Answer relevance, answer correctness, context precision and context recall, read off the
embedding model and the configured grounding judge.

The definitions follow ragas's (context precision as average precision of the useful
contexts, context recall as the share of the reference's claims the contexts support, answer
correctness as 0.75 × claim F1 + 0.25 × similarity); the verdicts come from our judge, so they
run offline by default and use the LLM tier when the contract configures it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evals.contract import GroundingConfig
from evals.dataset import Case
from evals.judges import default_embedder
from evals.scorers._grounding import grounding_judge, grounding_options
from evals.scorers._score import BatchScorer, Score, scorer
from evals.targets import Output

__all__ = ["answer_correctness", "answer_relevance", "context_precision", "context_recall"]

_NO_REFERENCE = "needs a reference answer on the case"


def _cosines(left: Sequence[str], right: Sequence[str]) -> list[float]:
    embedder = default_embedder()
    a, b = embedder.encode(list(left)), embedder.encode(list(right))
    return [float(max(0.0, v)) for v in np.einsum("ij,ij->i", a, b)]


@scorer(name="answer_relevance")
def answer_relevance() -> BatchScorer:
    """Cosine similarity of the answer to the question (embedding model), clipped at 0."""

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        sims = _cosines([c.input for c in cases], [o.text or "" for o in outputs])
        return [Score(s, None, f"question–answer similarity {s:.2f}") for s in sims]

    return score


@scorer(name="answer_correctness", options=grounding_options)
def answer_correctness(*, config: GroundingConfig | None = None) -> BatchScorer:
    """0.75 × F1 of claims (answer vs reference, both ways) + 0.25 × semantic similarity."""
    judge = grounding_judge(config)

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        usable = [i for i, c in enumerate(cases) if c.reference]
        answers = [outputs[i].text or "" for i in usable]
        references = [cases[i].reference or "" for i in usable]
        precision = judge.judge([(a, [r]) for a, r in zip(answers, references, strict=True)])
        recall = judge.judge([(r, [a]) for a, r in zip(answers, references, strict=True)])
        similarity = _cosines(answers, references)
        by_case: dict[int, Score] = {}
        for k, i in enumerate(usable):
            p, r = precision[k].support_share, recall[k].support_share
            f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
            value = 0.75 * f1 + 0.25 * similarity[k]
            missed = [c.text for c in recall[k].unsupported][:2]
            explanation = (
                f"claim precision {p:.2f}, recall {r:.2f}, similarity {similarity[k]:.2f}"
                + (f"; reference claims not in the answer: {missed}" if missed else "")
            )
            by_case[i] = Score(
                value,
                None,
                explanation,
                {"precision": precision[k].to_dict(), "recall": recall[k].to_dict()},
            )
        return [by_case.get(i) or Score.failed(_NO_REFERENCE) for i in range(len(cases))]

    return score


def _average_precision(relevant: Sequence[bool]) -> float:
    hits, total = 0, 0.0
    for rank, useful in enumerate(relevant, start=1):
        if useful:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


@scorer(name="context_precision", options=grounding_options)
def context_precision(*, config: GroundingConfig | None = None) -> BatchScorer:
    """Average precision of the retrieved contexts.

    A context is useful when it supports at least one claim of the reference.
    """
    judge = grounding_judge(config)

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        scores = []
        for case, output in zip(cases, outputs, strict=True):
            contexts = output.contexts_for(case)
            if not case.reference:
                scores.append(Score.failed(_NO_REFERENCE))
                continue
            if not contexts:
                scores.append(Score.failed("the case has no contexts"))
                continue
            verdicts = judge.judge([(case.reference, [c]) for c in contexts])
            useful = [bool(v.claims) and len(v.unsupported) < len(v.claims) for v in verdicts]
            value = _average_precision(useful)
            ranks = [i for i, u in enumerate(useful, start=1) if u]
            scores.append(
                Score(
                    value,
                    None,
                    f"useful contexts at ranks {ranks} of {len(contexts)}"
                    if ranks
                    else "no context supports the reference",
                    {"useful": useful},
                )
            )
        return scores

    return score


@scorer(name="context_recall", options=grounding_options)
def context_recall(*, config: GroundingConfig | None = None) -> BatchScorer:
    """Share of the reference's claims that the retrieved contexts support."""
    judge = grounding_judge(config)

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        usable = [i for i, c in enumerate(cases) if c.reference]
        verdicts = judge.judge(
            [(cases[i].reference or "", outputs[i].contexts_for(cases[i])) for i in usable]
        )
        by_case: dict[int, Score] = {}
        for i, verdict in zip(usable, verdicts, strict=True):
            if verdict.error:
                by_case[i] = Score.failed(verdict.error)
                continue
            missing = [c.text for c in verdict.unsupported]
            explanation = (
                f"contexts support all {len(verdict.claims)} reference claims"
                if not missing
                else f"{len(missing)} of {len(verdict.claims)} reference claims not in the contexts: {missing[:2]}"
            )
            by_case[i] = Score(verdict.support_share, None, explanation, verdict.to_dict())
        return [by_case.get(i) or Score.failed(_NO_REFERENCE) for i in range(len(cases))]

    return score
