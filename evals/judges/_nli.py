"""The NLI tier: a sentence-transformers ``CrossEncoder`` trained for entailment.

Configured by a model id (downloaded once, by the team, where downloads are allowed) or a
local path. Each claim is paired with the context windows most likely to support it; the
claim's support probability is the highest entailment probability over those windows, and a
claim whose best window contradicts it is marked contradicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals._env import apply_offline_defaults
from evals._heap import bound_native_heap
from evals.errors import UserError, display_path
from evals.judges._base import Claim, ClaimVerdict, GroundingVerdict, split_claims
from evals.judges._text import content_words, split_sentences

__all__ = ["NLIGroundingJudge", "context_windows"]


def context_windows(contexts: Sequence[str], size: int = 3) -> list[str]:
    """Passages cut into windows of up to ``size`` sentences, with stride 2.

    Long documents then fit a cross-encoder's input while a fact split over two sentences
    stays in one window.
    """
    windows: list[str] = []
    for passage in contexts:
        sentences = split_sentences(passage)
        if len(sentences) <= size:
            windows.append(" ".join(sentences) or passage)
            continue
        for start in range(0, len(sentences) - 1, 2):
            windows.append(" ".join(sentences[start : start + size]))
    return list(dict.fromkeys(w for w in windows if w.strip()))


def _overlap(claim: str, window: str) -> float:
    wanted = set(content_words(claim))
    return len(wanted & set(content_words(window))) / len(wanted) if wanted else 0.0


class NLIGroundingJudge:
    """Cross-encoder NLI judge: P(entailment) of each claim given its best context window."""

    name = "nli"

    def __init__(
        self,
        model: str,
        support_threshold: float = 0.5,
        max_windows: int = 6,
        batch_size: int = 16,
    ) -> None:
        apply_offline_defaults()
        bound_native_heap()  # its tensors must not fragment a long run's heap
        from sentence_transformers import CrossEncoder

        try:
            self._model: Any = CrossEncoder(model, device="cpu")
        except Exception as exc:  # a missing, partial or corrupt model folder is the user's
            local = Path(model).exists()
            hint = (
                "copy the whole model folder again"
                if local
                else "give a local path, or download it once where the hub is reachable "
                "(HF_HUB_OFFLINE=1 is set here)"
            )
            raise UserError.single(
                display_path(Path(model)) if local else model,
                "model",
                f"cannot load the cross-encoder: {type(exc).__name__}: {exc}; {hint}",
            ) from None
        labels = {int(i): str(name).lower() for i, name in self._model.config.id2label.items()}
        self._entail = next((i for i, n in labels.items() if "entail" in n), None)
        self._contradict = next((i for i, n in labels.items() if "contradict" in n), None)
        if self._entail is None:
            raise ValueError(
                f"'{model}' is not an NLI model: its labels are {sorted(labels.values())}, "
                "none of them 'entailment'"
            )
        self.model_name = model
        self.support_threshold = support_threshold
        self.max_windows = max_windows
        self.batch_size = batch_size

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Score every (window, claim) pair of the batch in one pass of the model."""
        plans: list[tuple[list[tuple[str, int, list[str]]], list[str], bool]] = []
        pairs: list[tuple[str, str]] = []
        for answer, contexts in items:
            claims, skipped = split_claims(answer)
            windows = context_windows(contexts)
            per_claim: list[tuple[str, int, list[str]]] = []
            for claim in claims:
                overlap = {w: _overlap(claim, w) for w in windows}
                ranked = sorted(windows, key=lambda w: -overlap[w])[: self.max_windows]
                per_claim.append((claim, len(pairs), ranked))
                pairs.extend((window, claim) for window in ranked)
            plans.append((per_claim, skipped, bool(contexts)))
        probabilities = (
            np.asarray(
                self._model.predict(
                    pairs, batch_size=self.batch_size, apply_softmax=True, show_progress_bar=False
                )
            )
            if pairs
            else np.empty((0, 0))
        )
        verdicts = []
        for per_claim, skipped, has_contexts in plans:
            if not has_contexts:
                verdicts.append(
                    GroundingVerdict(
                        [], skipped, "the case has no contexts to ground in", self.name
                    )
                )
                continue
            judged: list[Claim] = []
            for claim, offset, windows in per_claim:
                rows = probabilities[offset : offset + len(windows)]
                best = int(np.argmax(rows[:, self._entail]))
                entail = float(rows[best, self._entail])
                contra = (
                    float(rows[:, self._contradict].max()) if self._contradict is not None else 0.0
                )
                supported = entail >= self.support_threshold
                verdict: ClaimVerdict = (
                    "supported"
                    if supported
                    else ("contradicted" if contra > entail else "unsupported")
                )
                evidence = (
                    windows[best]
                    if supported or contra <= entail
                    else windows[int(np.argmax(rows[:, self._contradict]))]
                )
                judged.append(
                    Claim(
                        text=claim,
                        supported=supported,
                        probability=round(entail, 4),
                        evidence=evidence,
                        verdict=verdict,
                        reasons=[
                            f"entailment {entail:.2f}, contradiction {contra:.2f} ({self.model_name})"
                        ],
                        features={
                            "entailment": round(entail, 4),
                            "contradiction": round(contra, 4),
                        },
                    )
                )
            verdicts.append(GroundingVerdict(judged, skipped, judge=self.name))
        return verdicts
