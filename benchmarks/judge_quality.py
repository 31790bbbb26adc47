"""How good is a grounding judge? Balanced accuracy, F1 and ROC AUC on public labelled data.

    .venv/bin/python benchmarks/judge_quality.py                 # the offline judge, all four datasets
    .venv/bin/python benchmarks/judge_quality.py --write         # ... and record it in RESULTS.md
    .venv/bin/python benchmarks/judge_quality.py --judge nli --model PATH_OR_ID
    .venv/bin/python benchmarks/judge_quality.py --judge llm --model openai/gpt-4o-mini --api-key-env OPENAI_API_KEY

Every number is measured on ``report`` rows only (faithfulness_data.py: the split is by
context, so no document is on both sides). "BA (judge)" is the judge's own verdict at its
calibrated threshold; "BA (fit t)" uses a threshold on the unsupported probability chosen on
the same dataset's ``fit`` rows, to show how much is lost to one threshold for every task.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from faithfulness_data import (  # noqa: E402
    DATA,
    DATASETS,
    PUBLISHED,
    Row,
    balanced_accuracy,
    best_threshold,
    f1_positive,
    length_controlled_auc,
    load,
    roc_auc,
)
from results_file import write_section  # noqa: E402

from evals.contract import GroundingConfig  # noqa: E402
from evals.judges import GroundingJudge, build_judge  # noqa: E402

BATCH = 64


def judge_rows(judge: GroundingJudge, rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    """Unsupported probability (1 − support of the weakest claim) and the judge's verdict."""
    unsupported = np.zeros(len(rows))
    predicted = np.zeros(len(rows), int)
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        for k, verdict in enumerate(judge.judge([(r.answer, [r.context]) for r in batch])):
            unsupported[start + k] = 1.0 - verdict.support_score if not verdict.error else 0.5
            predicted[start + k] = int(bool(verdict.unsupported))
    return unsupported, predicted


def cluster_ci(
    rows: list[Row], labels: np.ndarray, predicted: np.ndarray, resamples: int = 1000
) -> tuple[float, float]:
    """95% interval of balanced accuracy, resampling contexts (rows of a context move together)."""
    contexts = sorted({r.context for r in rows})
    members: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        members.setdefault(r.context, []).append(i)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(resamples):
        picked = rng.integers(0, len(contexts), len(contexts))
        index = np.concatenate([members[contexts[j]] for j in picked])
        if len(set(labels[index])) == 2:
            values.append(balanced_accuracy(labels[index], predicted[index]))
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--judge", default="offline", choices=["offline", "nli", "llm", "ragas"])
    parser.add_argument("--model")
    parser.add_argument("--api-base")
    parser.add_argument("--api-key-env")
    parser.add_argument(
        "--operating-point", default="balanced", choices=["balanced", "low_false_alarm"]
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument(
        "--write", action="store_true", help="record the table in benchmarks/RESULTS.md"
    )
    args = parser.parse_args()

    config = GroundingConfig(
        judge=args.judge,
        model=args.model,
        api_base=args.api_base,
        api_key_env=args.api_key_env,
        operating_point=args.operating_point,
    )
    judge = build_judge(config)
    rows = load(args.data, args.datasets)
    lines = []
    summary = {}
    started = time.perf_counter()
    for name in args.datasets:
        subset = [r for r in rows if r.dataset == name]
        t0 = time.perf_counter()
        unsupported, predicted = judge_rows(judge, subset)
        seconds = time.perf_counter() - t0
        labels = np.array([r.label for r in subset])
        fit = np.array([r.split == "fit" for r in subset])
        report = ~fit
        fit_t = best_threshold({name: (labels[fit], unsupported[fit])})
        report_rows = [r for r, keep in zip(subset, report, strict=True) if keep]
        y, p, s = labels[report], predicted[report], unsupported[report]
        ba = balanced_accuracy(y, p)
        low, high = cluster_ci(report_rows, y, p)
        auc = roc_auc(y, s)
        extra = ""
        if name == "halueval_qa":
            lengths = [len(r.answer.split()) for r in report_rows]
            extra = f" (within answer-length bins: {length_controlled_auc(y, s, lengths):.3f})"
        summary[name] = (ba, auc)
        lines.append(
            f"| {name} | {int(report.sum())} | {auc:.3f}{extra} | **{ba:.3f}** [{low:.3f}, {high:.3f}] | "
            f"{f1_positive(y, p):.3f} | {balanced_accuracy(y, (s >= fit_t).astype(int)):.3f} | "
            f"{PUBLISHED[name]} |"
        )
        print(
            f"{name}: AUC {auc:.3f}, BA {ba:.3f} [{low:.3f}, {high:.3f}] ({len(subset)} rows in {seconds:.0f}s)",
            flush=True,
        )
    mean_ba = float(np.mean([v[0] for v in summary.values()]))
    mean_auc = float(np.mean([v[1] for v in summary.values()]))
    tier = args.judge + (f" ({args.model})" if args.model else "")
    if args.judge == "offline":
        tier += f", operating point {args.operating_point}"
    table = "\n".join(
        [
            f"## Grounding judge quality: {tier}",
            "",
            f"Command: `.venv/bin/python benchmarks/judge_quality.py --judge {args.judge}"
            + (f" --model {args.model}" if args.model else "")
            + (f" --operating-point {args.operating_point}" if args.judge == "offline" else "")
            + " --write`  ",
            f"Run: {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
            f"{time.perf_counter() - started:.0f}s.",
            "Label 1 = unsupported. Report rows only; BA = balanced accuracy with its 95% interval "
            "(contexts resampled); F1 of the unsupported class.",
            "",
            "| dataset | report rows | ROC AUC | BA (judge) | F1 unsupported | BA (fit t) | published on this data |",
            "|---|---|---|---|---|---|---|",
            *lines,
            f"| **mean** | | {mean_auc:.3f} | **{mean_ba:.3f}** | | | |",
        ]
    )
    print(table)
    if args.write:
        suffix = f"_{args.operating_point}" if args.judge == "offline" else ""
        write_section(f"judge_quality_{args.judge}{suffix}", table)


if __name__ == "__main__":
    main()
