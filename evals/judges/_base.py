"""What every grounding judge shares: claims, verdicts, and the judge interface."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, Protocol

from evals.judges._text import COURTESY, WORD, is_content, normalise_word, split_sentences

__all__ = [
    "Claim",
    "ClaimVerdict",
    "GroundingJudge",
    "GroundingVerdict",
    "is_claim",
    "split_claims",
]

ClaimVerdict = Literal["supported", "unsupported", "contradicted"]


@dataclass(frozen=True)
class Claim:
    """One claim of an answer and a judge's verdict on it."""

    text: str
    supported: bool
    probability: float
    """Probability that the contexts support the claim."""
    evidence: str
    """The context passage that supports it, or the closest one when none does."""
    verdict: ClaimVerdict = "supported"
    reasons: list[str] = field(default_factory=list)
    """Why, in words."""
    features: dict[str, float] = field(default_factory=dict)
    """The numbers the verdict rests on (similarities, coverage, votes...)."""


@dataclass(frozen=True)
class GroundingVerdict:
    """A judge's reading of one answer."""

    claims: list[Claim]
    skipped: list[str] = field(default_factory=list)
    """Sentences with no factual content (greetings, offers of help)."""
    error: str | None = None
    judge: str = ""
    repeat_shares: list[float] = field(default_factory=list)
    """With a repeated judge: the share of claims supported in each repeat."""
    repeat_flags: list[bool] = field(default_factory=list)
    """With a repeated judge: whether each repeat found an unsupported claim."""

    @property
    def unsupported(self) -> list[Claim]:
        """Claims the contexts do not support (contradicted ones included)."""
        return [c for c in self.claims if not c.supported]

    @property
    def support_share(self) -> float:
        """Share of claims supported; 1.0 for an answer with no claims."""
        return 1.0 if not self.claims else 1.0 - len(self.unsupported) / len(self.claims)

    @property
    def support_score(self) -> float:
        """Answer-level support: the probability of its least-supported claim (1.0 if none)."""
        return min((c.probability for c in self.claims), default=1.0)

    def at_threshold(self, threshold: float) -> GroundingVerdict:
        """The same verdict at another support threshold (a calibrated operating point).

        Every tier calls a claim supported when its probability of support reaches the
        threshold, so moving the threshold re-reads each claim's probability; a claim the judge
        found contradicted stays contradicted when it falls below.
        """
        claims = []
        for claim in self.claims:
            supported = claim.probability >= threshold
            verdict: ClaimVerdict = (
                "supported"
                if supported
                else ("contradicted" if claim.verdict == "contradicted" else "unsupported")
            )
            reasons = claim.reasons
            if supported != claim.supported:
                reasons = [
                    f"support {claim.probability:.2f} is "
                    + ("at or above" if supported else "below")
                    + f" the calibrated threshold {threshold:.2f}",
                    *claim.reasons,
                ]
            claims.append(replace(claim, supported=supported, verdict=verdict, reasons=reasons))
        return replace(self, claims=claims)

    def to_dict(self) -> dict[str, object]:
        """Plain data, for storage."""
        data: dict[str, object] = {
            "judge": self.judge,
            "claims": [asdict(c) for c in self.claims],
            "skipped": self.skipped,
        }
        if self.repeat_shares:
            data["repeat_shares"] = self.repeat_shares
            data["repeat_flags"] = self.repeat_flags
        return data


class GroundingJudge(Protocol):
    """Judges whether answers are supported by their contexts, claim by claim."""

    name: str

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Judge ``(answer, contexts)`` pairs; one verdict per pair, in order."""
        ...


_LONG_SENTENCE_WORDS = 20
_MIN_CLAUSE_WORDS = 4
_CLAUSE = re.compile(r";\s+|,\s+(?=(?:and|but|while|whereas|which|who|although|though)\b)")


def _states_something(piece: str) -> bool:
    words = [normalise_word(m.group(0)) for m in WORD.finditer(piece)]
    return any(is_content(w) and w not in COURTESY for w in words)


def is_claim(sentence: str) -> bool:
    """Whether a sentence states something checkable (not "Sure!" or "Happy to help.")."""
    return _states_something(sentence)


def _pieces(sentence: str) -> list[str]:
    if len(WORD.findall(sentence)) <= _LONG_SENTENCE_WORDS:
        return [sentence]
    merged: list[str] = []
    for part in _CLAUSE.split(sentence):
        if merged and (
            len(WORD.findall(part)) < _MIN_CLAUSE_WORDS
            or len(WORD.findall(merged[-1])) < _MIN_CLAUSE_WORDS
        ):
            merged[-1] = f"{merged[-1]}, {part}"
        else:
            merged.append(part)
    return merged


def plan_claims(sentences: Sequence[str]) -> list[tuple[int, str, bool]]:
    """Cut sentences into pieces and say which pieces are claims.

    A sentence of more than 20 words is cut at semicolons and before ", and" / ", but" /
    ", while" / ", which" / ", who" / ", although"..., when both sides keep 4+ words. A piece is
    a claim when it has a content word that is not a pleasantry.

    Returns:
        ``(sentence index, piece, is claim)`` in text order.
    """
    return [
        (i, piece, _states_something(piece))
        for i, s in enumerate(sentences)
        for piece in _pieces(s)
    ]


def split_claims(text: str) -> tuple[list[str], list[str]]:
    """Split an answer into claims (sentences, and clauses of long sentences).

    An answer whose only checkable content is shorter than a sentence ("Arthur's Magazine")
    is one claim.

    Returns:
        ``(claims, skipped)``: checkable claims, and sentences with nothing to check.
    """
    planned = plan_claims(split_sentences(text) or [text])
    claims = [piece for _, piece, claim in planned if claim]
    skipped = list(dict.fromkeys(piece for _, piece, claim in planned if not claim))
    if not claims and _states_something(text):
        return [text.strip()], []
    return claims, skipped
