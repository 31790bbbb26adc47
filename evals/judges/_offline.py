"""The offline grounding judge: is each claim of an answer supported by its contexts?

It uses what runs here without keys or downloads: the bundled sentence-embedding model and the
text itself. For every claim (a sentence of the answer that states something) it finds the
closest context sentence, then combines evidence into a support probability:

- semantic similarity of the claim to its closest context sentence (or pair of sentences);
- coverage: the share of the claim's content words that appear anywhere in the contexts;
- hard evidence against support: a number, or a name, in the claim that no context contains.

Every verdict keeps its reasons and the closest passage, so a reviewer can check it.
See docs/design/grounding-judge.md for what this judge can and cannot see.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence

import numpy as np

from evals.judges._base import Claim, GroundingVerdict, split_claims
from evals.judges._embedding import Embedder, default_embedder
from evals.judges._text import WORD as _WORD
from evals.judges._text import content_words, names, numbers, split_sentences

__all__ = ["OfflineGroundingJudge"]

# Similarity of the closest context sentence that maps to "no support" and "full support".
_SIM_FLOOR, _SIM_CEILING = 0.35, 0.85
_CAP_NEW_NUMBER = 0.10
_CAP_NEW_NAME = 0.30


def _key(answer: str, contexts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([answer, list(contexts)]).encode()).hexdigest()


class OfflineGroundingJudge:
    """Embedding + text-evidence judge; deterministic, explainable, no network."""

    name = "offline"

    def __init__(
        self, support_threshold: float | None = None, embedder: Embedder | None = None
    ) -> None:
        self.support_threshold = 0.5 if support_threshold is None else support_threshold
        self._embedder = embedder
        self._memo: dict[str, GroundingVerdict] = {}

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Judge ``(answer, contexts)`` pairs in one batch (embeddings are batched)."""
        keys = [_key(answer, contexts) for answer, contexts in items]
        todo = [(k, a, c) for k, (a, c) in zip(keys, items, strict=True) if k not in self._memo]
        if todo:
            for key, verdict in zip(
                [k for k, _, _ in todo],
                self._judge_batch([(a, c) for _, a, c in todo]),
                strict=True,
            ):
                self._memo[key] = verdict
        return [self._memo[k] for k in keys]

    def _judge_batch(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        prepared = []
        texts: list[str] = []
        for answer, contexts in items:
            claims, skipped = split_claims(answer)
            units = self._support_units(contexts)
            prepared.append((claims, skipped, units, contexts))
            texts.extend(claims)
            texts.extend(units)
        vectors = self.embedder.encode(texts) if texts else np.empty((0, 0))
        verdicts, offset = [], 0
        for claims, skipped, units, contexts in prepared:
            claim_vectors = vectors[offset : offset + len(claims)]
            offset += len(claims)
            unit_vectors = vectors[offset : offset + len(units)]
            offset += len(units)
            if not contexts:
                verdicts.append(
                    GroundingVerdict(
                        [], skipped, "the case has no contexts to ground in", self.name
                    )
                )
                continue
            verdicts.append(
                GroundingVerdict(
                    [
                        self._claim(claim, vector, units, unit_vectors, contexts)
                        for claim, vector in zip(claims, claim_vectors, strict=True)
                    ],
                    skipped,
                    judge=self.name,
                )
            )
        return verdicts

    @staticmethod
    def _support_units(contexts: Sequence[str]) -> list[str]:
        """Context sentences, plus adjacent pairs (a claim often fuses two sentences)."""
        units: list[str] = []
        for passage in contexts:
            sentences = split_sentences(passage)
            units.extend(sentences)
            units.extend(f"{a} {b}" for a, b in itertools.pairwise(sentences))
        return list(dict.fromkeys(units))

    def _claim(
        self,
        claim: str,
        vector: np.ndarray,
        units: list[str],
        unit_vectors: np.ndarray,
        contexts: Sequence[str],
    ) -> Claim:
        similarities = unit_vectors @ vector
        best = int(np.argmax(similarities))
        similarity = float(similarities[best])
        evidence = units[best]
        context_text = " ".join(contexts)
        context_words = set(content_words(context_text))
        words = content_words(claim)
        covered = [w for w in words if w in context_words]
        coverage = len(covered) / len(words) if words else 1.0

        semantic = float(np.clip((similarity - _SIM_FLOOR) / (_SIM_CEILING - _SIM_FLOOR), 0, 1))
        probability = 0.5 * semantic + 0.5 * coverage
        reasons = [f"closest passage similarity {similarity:.2f}"]
        missing = sorted(
            {
                w.lower()
                for w in _WORD.findall(claim)
                if (s := content_words(w)) and s[0] not in context_words
            }
        )
        if missing:
            reasons.append(
                f"{len(missing)} of {len(set(words))} content words not in the contexts: "
                + ", ".join(missing[:6])
            )
        new_numbers = sorted(numbers(claim) - numbers(context_text))
        if new_numbers:
            probability = min(probability, _CAP_NEW_NUMBER)
            reasons.append("number(s) not in any context: " + ", ".join(new_numbers))
        lowered = context_text.lower()
        new_names = sorted(n for n in names(claim) if n.lower() not in lowered)
        if new_names:
            probability = min(probability, _CAP_NEW_NAME)
            reasons.append("name(s) not in any context: " + ", ".join(new_names))
        supported = probability >= self.support_threshold
        return Claim(
            text=claim,
            supported=supported,
            probability=round(probability, 4),
            evidence=evidence,
            verdict="supported" if supported else "unsupported",
            reasons=reasons,
            features={"similarity": round(similarity, 4), "coverage": round(coverage, 4)},
        )
