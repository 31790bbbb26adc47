"""The offline grounding judge: the bundled embedding model plus text evidence, calibrated.

No NLI model can be installed offline, so the judge reads support from what it can see: how
well each claim's words align with the best window of the context (in order, and as a bag),
which of its words, names and numbers the context lacks. Six features with directions fixed in
advance are standardised and averaged into an *unsupported score*; only the standardisation,
one threshold and a two-parameter calibration are fitted, on part of the public labelled
benchmarks (``evals/judges/offline_params.json`` records what, on which rows, and the command
that refits them). An answer is as supported as its least-supported claim.
See docs/design/grounding-judge.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from evals._io import KeyValueFile, cache_dir
from evals.judges._base import Claim, GroundingVerdict, split_claims
from evals.judges._embedding import Embedder, default_embedder, model_fingerprint
from evals.judges._evidence import (
    FEATURES,
    VERSION,
    ClaimEvidence,
    WordEncoder,
    evidence_batch,
)

__all__ = [
    "PARAMS_FILE",
    "OfflineGroundingJudge",
    "OfflineParams",
    "load_params",
    "offline_fingerprint",
]

PARAMS_FILE = Path(__file__).with_name("offline_params.json")
NEAR_COPY = 0.9
"""Window coverage above which a claim is a near copy of its passage: a flipped negation is
then a contradiction, not a paraphrase."""
HARD_CAP = 0.2
"""Support probability of a claim that hard evidence contradicts."""
MEMO_SIZE = 10_000
"""Verdicts a judge remembers (the latest): enough for the suites that share it to ask about
the same batch, bounded so a long run's memory does not grow with its cases."""


@dataclass(frozen=True)
class OfflineParams:
    """The fitted numbers of the offline judge."""

    directions: dict[str, int]
    mean: dict[str, float]
    """Mean of each oriented feature (−direction × value) on the fitting claims."""
    std: dict[str, float]
    thresholds: dict[str, float]
    """Operating point → the unsupported score above which a claim is unsupported."""
    platt_a: float
    platt_b: float
    """P(unsupported) = 1 / (1 + exp(−(a + b · score)))."""
    provenance: dict[str, Any]

    def score(self, features: dict[str, float]) -> float:
        """Unsupported score of one claim: the mean of its standardised oriented features."""
        total = 0.0
        for name, direction in self.directions.items():
            total += (-direction * features[name] - self.mean[name]) / self.std[name]
        return total / len(self.directions)

    def p_supported(self, score: float) -> float:
        """Calibrated probability that a claim with this score is supported."""
        return 1.0 - 1.0 / (1.0 + math.exp(-(self.platt_a + self.platt_b * score)))

    def support_threshold(self, operating_point: str = "balanced") -> float:
        """A fitted threshold, in probability-of-support terms."""
        return self.p_supported(self.thresholds[operating_point])


@lru_cache(maxsize=4)
def load_params(path: Path = PARAMS_FILE) -> OfflineParams:
    """Read the fitted parameters (see ``benchmarks/fit_offline_judge.py``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if set(data["directions"]) != set(FEATURES) or any(
        data["directions"][k] != d for k, d in FEATURES.items()
    ):
        raise ValueError(
            f"{path} was fitted for other features; refit with benchmarks/fit_offline_judge.py"
        )
    return OfflineParams(
        directions=data["directions"],
        mean=data["mean"],
        std=data["std"],
        thresholds=data["thresholds"],
        platt_a=data["platt"]["a"],
        platt_b=data["platt"]["b"],
        provenance=data["provenance"],
    )


def _key(answer: str, contexts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([answer, list(contexts)]).encode()).hexdigest()


def hard_evidence(evidence: ClaimEvidence) -> list[str]:
    """Evidence that settles a claim whatever the similarities say.

    A number no context has, or a negation added to a passage the claim otherwise copies.
    """
    found = []
    if evidence.missing_numbers:
        found.append("number(s) not in any context: " + ", ".join(evidence.missing_numbers))
    if evidence.negation_mismatch and evidence.features["win_cover"] >= NEAR_COPY:
        found.append("the claim negates what its passage states")
    return found


def _reasons(evidence: ClaimEvidence, probability: float, threshold: float) -> list[str]:
    f = evidence.features
    reasons = [
        f"support {probability:.2f} (threshold {threshold:.2f}); best window covers the claim at "
        f"{f['win_cover']:.2f}, in order {f['win_mono_mean']:.2f}"
    ]
    if evidence.missing_words:
        reasons.append("words not in the contexts: " + ", ".join(evidence.missing_words[:8]))
    if evidence.missing_names_numbers:
        reasons.append(
            "names or numbers not in the contexts: " + ", ".join(evidence.missing_names_numbers)
        )
    return reasons


def offline_fingerprint(params_path: Path = PARAMS_FILE, model_path: Path | None = None) -> str:
    """What the offline judge's scores depend on: its fitted parameters, features and model.

    Equal fingerprints score every answer alike; a calibration fitted on one holds for the other.
    """
    digest = hashlib.sha256(params_path.read_bytes())
    digest.update(f"\x00features {VERSION}\x00model {model_fingerprint(model_path)}".encode())
    return "offline:" + digest.hexdigest()[:16]


class OfflineGroundingJudge:
    """Embedding + text-evidence judge; deterministic, explainable, no network.

    Args:
        support_threshold: a claim is supported when its probability of support is at least
            this (default: the fitted threshold of ``operating_point``).
        embedder: the model (default: the bundled all-MiniLM-L6-v2, loaded on first use).
        params: the fitted numbers (default: ``offline_params.json``).
        operating_point: ``balanced`` or ``low_false_alarm``.
        sentence_cache: keep context sentences' vectors in a file under the cache folder, so
            a rerun over the same contexts reads them instead of running the model.
    """

    name = "offline"

    def __init__(
        self,
        support_threshold: float | None = None,
        embedder: Embedder | None = None,
        params: OfflineParams | None = None,
        operating_point: str = "balanced",
        *,
        sentence_cache: bool = True,
    ) -> None:
        self.params = params or load_params()
        self.support_threshold = (
            self.params.support_threshold(operating_point)
            if support_threshold is None
            else support_threshold
        )
        self._embedder = embedder
        self._sentence_cache = sentence_cache
        self._words: WordEncoder | None = None
        self._memo: OrderedDict[str, GroundingVerdict] = OrderedDict()

    @property
    def words(self) -> WordEncoder:
        """The word encoder over the embedding model, built on first use."""
        if self._words is None:
            embedder = self._embedder or default_embedder()
            store = (
                KeyValueFile(
                    cache_dir() / "sentence-vectors.sqlite", "the offline judge's sentence cache"
                )
                if self._sentence_cache
                else None
            )
            self._words = WordEncoder(
                embedder, embedder.dimension, store=store, fingerprint=embedder.fingerprint
            )
        return self._words

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Judge ``(answer, contexts)`` pairs; answers and contexts are encoded in one batch."""
        keys = [_key(answer, contexts) for answer, contexts in items]
        todo = {k: item for k, item in zip(keys, items, strict=True) if k not in self._memo}
        fresh = dict(zip(todo, self._judge_batch(list(todo.values())), strict=True))
        verdicts = [fresh[k] if k in fresh else self._memo[k] for k in keys]
        # The suites that share the judge (faithfulness, hallucination) ask about the same
        # batch: remember the latest verdicts, never a whole run's (its memory stays flat).
        for key, verdict in zip(keys, verdicts, strict=True):
            self._memo[key] = verdict
            self._memo.move_to_end(key)
        while len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return verdicts

    def _judge_batch(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        verdicts = []
        evidence = evidence_batch(self.words, items)
        for (answer, _), found in zip(items, evidence, strict=True):
            _, skipped = split_claims(answer)
            if found is None:
                verdicts.append(
                    GroundingVerdict(
                        [], skipped, "the case has no contexts to ground in", self.name
                    )
                )
                continue
            verdicts.append(
                GroundingVerdict(
                    [self._claim(text, e) for text, e in found], skipped, judge=self.name
                )
            )
        return verdicts

    def _claim(self, text: str, evidence: ClaimEvidence) -> Claim:
        score = self.params.score(evidence.features)
        probability = self.params.p_supported(score)
        hard = hard_evidence(evidence)
        if hard:
            probability = min(probability, HARD_CAP)
        supported = probability >= self.support_threshold
        near_copy = evidence.features["win_cover"] >= NEAR_COPY
        return Claim(
            text=text,
            supported=supported,
            probability=round(probability, 4),
            evidence=evidence.window,
            verdict="supported"
            if supported
            else ("contradicted" if hard and near_copy else "unsupported"),
            reasons=hard + _reasons(evidence, probability, self.support_threshold),
            features={**evidence.features, "unsupported_score": round(score, 4)},
        )
