"""The public faithfulness benchmarks, split into fitting and reporting rows, and the metrics.

Rows are split by their context: ``sha256(context) % 10 < 4`` → ``fit`` (40%), else ``report``.
Every row that shares a document or knowledge passage lands on the same side, so nothing
learned on a document is measured on it. Anything fitted (weights, thresholds) uses ``fit``
rows only; every reported number uses ``report`` rows only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evals import metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "faithfulness"
DATASETS = ("begin_true", "halueval_qa", "qags", "summedits")
PUBLISHED = {
    "summedits": "balanced accuracy: GPT-4 83.2, Gemini-pro 77.8, ChatGPT 72.5, QAFactEval 67.4, SummaC-Conv 57.1",
    "halueval_qa": "accuracy of ChatGPT 62.6",
    "qags": "ROC AUC of NLI detectors in TRUE: ANLI T5-11B ≈ 0.81–0.84, SummaC-ZS ≈ 0.78–0.82",
    "begin_true": "ROC AUC of NLI detectors in TRUE: ANLI T5-11B ≈ 0.81–0.84, SummaC-ZS ≈ 0.78–0.82",
}


@dataclass(frozen=True)
class Row:
    """One labelled answer; ``label`` 1 = not supported by the context."""

    id: str
    dataset: str
    question: str
    context: str
    answer: str
    label: int
    split: str


def split_of(context: str) -> str:
    """``fit`` or ``report``, by the context's hash."""
    return (
        "fit" if int(hashlib.sha256(context.encode("utf-8")).hexdigest(), 16) % 10 < 4 else "report"
    )


def load(data: Path = DATA, datasets: Sequence[str] = DATASETS) -> list[Row]:
    """Every row of the named datasets."""
    rows = []
    for name in datasets:
        with (data / f"{name}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                r = json.loads(line)
                rows.append(
                    Row(
                        r["id"],
                        name,
                        r.get("question") or "",
                        r["context"],
                        r["answer"],
                        int(r["label"]),
                        split_of(r["context"]),
                    )
                )
    return rows


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC of ``scores`` for label 1 (``evals.metrics.roc_auc``; NaN with one class)."""
    auc = metrics.roc_auc(np.asarray(labels).tolist(), np.asarray(scores, dtype=float).tolist())
    return float("nan") if auc is None else auc


def balanced_accuracy(labels: Sequence[int], predicted: Sequence[int]) -> float:
    """Mean of the recall of each class (``evals.metrics.Confusion``)."""
    value = metrics.Confusion.of(np.asarray(labels), np.asarray(predicted))
    return float("nan") if value.balanced_accuracy is None else value.balanced_accuracy


def f1_positive(labels: Sequence[int], predicted: Sequence[int]) -> float:
    """F1 of the unsupported class (label 1)."""
    return metrics.Confusion.of(np.asarray(labels), np.asarray(predicted)).f1


def length_controlled_auc(
    labels: Sequence[int], scores: Sequence[float], lengths: Sequence[int], bins: int = 4
) -> float:
    """Mean ROC AUC within answer-length quantile bins (weighted by bin size).

    On HaluEval-QA answer length alone separates the classes; a gain there counts only if it
    survives comparing answers of similar length.
    """
    y, s, n = np.asarray(labels), np.asarray(scores, dtype=float), np.asarray(lengths)
    edges = np.unique(np.quantile(n, np.linspace(0, 1, bins + 1)))
    total, weight = 0.0, 0
    for low, high in itertools.pairwise(edges):
        inside = (n >= low) & (n <= high) if high == edges[-1] else (n >= low) & (n < high)
        if inside.sum() and len(set(y[inside])) == 2:
            total += roc_auc(y[inside], s[inside]) * int(inside.sum())
            weight += int(inside.sum())
    return total / weight if weight else float("nan")


def best_threshold(groups: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """The threshold on an unsupported score that maximises mean balanced accuracy.

    Each group is ``(labels, scores)``; a prediction is 1 when score >= threshold.
    """
    candidates = np.unique(np.concatenate([s for _, s in groups.values()]))
    if len(candidates) > 2000:
        candidates = np.quantile(candidates, np.linspace(0, 1, 2001))
    best, best_value = 0.5, -1.0
    for t in candidates:
        value = float(
            np.mean([balanced_accuracy(y, (s >= t).astype(int)) for y, s in groups.values()])
        )
        if value > best_value:
            best, best_value = float(t), value
    return best


def passage_from(context: str, rng: np.random.Generator, max_words: int = 120) -> str:
    """A retrieved-passage-sized piece of a context: consecutive sentences from a random start."""
    from evals.judges import split_sentences

    sentences = split_sentences(context) or [context]
    start = int(rng.integers(0, len(sentences)))
    taken: list[str] = []
    for sentence in sentences[start:]:
        if taken and sum(len(s.split()) for s in taken) + len(sentence.split()) > max_words:
            break
        taken.append(sentence)
    words = " ".join(taken).split()
    return " ".join(words[:max_words])


def with_distractors(
    rows: Sequence[Row], pool: Sequence[Row], seed: int = 0, low: int = 2, high: int = 5
) -> list[list[str]]:
    """Each row's context plus 2–5 passages cut from other documents of the same dataset.

    ``pool`` is where the other documents come from (any rows); the row's own context goes to a
    random position among the distractors, as a retriever would rank it.
    """
    rng = np.random.default_rng(seed)
    by_dataset: dict[str, dict[str, None]] = {}
    for r in pool:
        by_dataset.setdefault(r.dataset, {})[r.context] = None
    documents = {name: list(contexts) for name, contexts in by_dataset.items()}
    out = []
    for r in rows:
        others = [c for c in documents[r.dataset] if c != r.context]
        count = min(len(others), int(rng.integers(low, high + 1)))
        picked = rng.choice(len(others), size=count, replace=False)
        contexts = [passage_from(others[int(i)], rng) for i in picked]
        contexts.insert(int(rng.integers(0, count + 1)), r.context)
        out.append(contexts)
    return out


def split_passages(context: str, parts: int = 3) -> list[str]:
    """A context cut into up to ``parts`` passages of consecutive sentences (same text)."""
    from evals.judges import split_sentences

    sentences = split_sentences(context) or [context]
    size = max(1, -(-len(sentences) // parts))
    return [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]
