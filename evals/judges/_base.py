"""What every grounding judge shares: claims, verdicts, and the judge interface."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from evals.judges._text import content_words, numbers, split_sentences

__all__ = [
    "Claim",
    "ClaimVerdict",
    "GroundingJudge",
    "GroundingVerdict",
    "is_claim",
    "split_claims",
]

ClaimVerdict = Literal["supported", "unsupported", "contradicted"]

_MIN_CLAIM_WORDS = 3
_MIN_CLAUSE_WORDS = 5
_LONG_SENTENCE_WORDS = 18
_CLAUSE = re.compile(r";\s+|,\s+(?=(?:and|but|while|whereas|although|so|yet)\s)", re.IGNORECASE)


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

    def to_dict(self) -> dict[str, object]:
        """Plain data, for storage."""
        return {
            "judge": self.judge,
            "claims": [asdict(c) for c in self.claims],
            "skipped": self.skipped,
        }


class GroundingJudge(Protocol):
    """Judges whether answers are supported by their contexts, claim by claim."""

    name: str

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Judge ``(answer, contexts)`` pairs; one verdict per pair, in order."""
        ...


def is_claim(sentence: str) -> bool:
    """Whether a sentence states something checkable (not "Sure!" or "Happy to help.")."""
    return len(content_words(sentence)) >= _MIN_CLAIM_WORDS or bool(numbers(sentence))


def _clauses(sentence: str) -> list[str]:
    if len(sentence.split()) < _LONG_SENTENCE_WORDS:
        return [sentence]
    parts: list[str] = []
    for piece in _CLAUSE.split(sentence):
        piece = piece.strip()
        if (parts and len(piece.split()) < _MIN_CLAUSE_WORDS) or (
            parts and len(parts[-1].split()) < _MIN_CLAUSE_WORDS
        ):
            parts[-1] = f"{parts[-1]}, {piece}"
        else:
            parts.append(piece)
    return parts


def split_claims(text: str) -> tuple[list[str], list[str]]:
    """Split an answer into claims.

    Claims are sentences, and clauses of long sentences that join several facts (split at
    semicolons and at ", and" / ", but" / ", while"...).

    Returns:
        ``(claims, skipped)``: checkable claims, and sentences with nothing to check.
    """
    claims: list[str] = []
    skipped: list[str] = []
    for sentence in split_sentences(text):
        if not is_claim(sentence):
            skipped.append(sentence)
            continue
        claims.extend(c for c in _clauses(sentence) if c)
    return claims, skipped
