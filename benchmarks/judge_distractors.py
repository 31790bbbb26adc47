"""Does the offline judge hold its verdict when the context is retrieved in passages?

    .venv/bin/python benchmarks/judge_distractors.py [--rows 250] [--write]

A retriever returns the passage that answers the question among others that do not, and cuts
documents into passages. For a seeded sample of ``report`` rows of each faithfulness dataset,
the default judge (operating point ``balanced``) judges each answer against its context as
given, and against:

- *distractors*: the context joined by 2–5 passages (up to 120 words of consecutive sentences)
  cut from other documents of the same dataset, the row's own context at a random position
  (faithfulness_data.with_distractors);
- *split*: the same context cut into three passages (the same text; a judge should not care).

Reported: how far the answer's support score moves (mean and 90th percentile of |Δ|, the mean
signed Δ: positive = looks more supported), the share of verdicts that flip, and ROC AUC and
balanced accuracy before and after.
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
    Row,
    balanced_accuracy,
    load,
    roc_auc,
    split_passages,
    with_distractors,
)
from results_file import write_section  # noqa: E402

from evals.judges import OfflineGroundingJudge  # noqa: E402

BATCH = 64


def support(
    judge: OfflineGroundingJudge, items: list[tuple[str, list[str]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Support score of each answer (its weakest claim) and whether it is flagged."""
    scores, flags = np.zeros(len(items)), np.zeros(len(items), int)
    for start in range(0, len(items), BATCH):
        for k, verdict in enumerate(judge.judge(items[start : start + BATCH])):
            scores[start + k] = verdict.support_score
            flags[start + k] = int(bool(verdict.unsupported))
    return scores, flags


def sample(rows: list[Row], name: str, count: int, seed: int) -> list[Row]:
    """Up to ``count`` report rows of one dataset, drawn without replacement (seeded)."""
    report = [r for r in rows if r.dataset == name and r.split == "report"]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(report), size=min(count, len(report)), replace=False)
    return [report[int(i)] for i in sorted(picked)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rows", type=int, default=250, help="report rows per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    rows = load(args.data)
    judge = OfflineGroundingJudge(sentence_cache=False)
    started = time.perf_counter()
    sections: dict[str, list[str]] = {"distractors": [], "split": []}
    totals: dict[str, list[np.ndarray]] = {"distractors": [], "split": []}
    for name in DATASETS:
        chosen = sample(rows, name, args.rows, args.seed)
        labels = np.array([r.label for r in chosen])
        alone, flag_alone = support(judge, [(r.answer, [r.context]) for r in chosen])
        variants = {
            "distractors": with_distractors(chosen, rows, seed=args.seed),
            "split": [split_passages(r.context) for r in chosen],
        }
        for variant, contexts in variants.items():
            joined, flag_joined = support(
                judge, [(r.answer, c) for r, c in zip(chosen, contexts, strict=True)]
            )
            delta = joined - alone
            totals[variant].append(delta)
            sections[variant].append(
                f"| {name} | {len(chosen)} | {np.mean(np.abs(delta)):.3f} | "
                f"{np.quantile(np.abs(delta), 0.9):.3f} | {np.mean(delta):+.3f} | "
                f"{np.mean(flag_alone != flag_joined):.1%} | "
                f"{roc_auc(labels, 1 - alone):.3f} → {roc_auc(labels, 1 - joined):.3f} | "
                f"{balanced_accuracy(labels, flag_alone):.3f} → "
                f"{balanced_accuracy(labels, flag_joined):.3f} |"
            )
            print(variant, sections[variant][-1], flush=True)
    header = [
        "| dataset | rows | mean abs Δ | p90 abs Δ | mean Δ | verdicts flipped "
        "| ROC AUC before → after | BA before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    tables = []
    for variant, title in (
        ("distractors", "2–5 passages from other documents added"),
        ("split", "the context cut into three passages"),
    ):
        every = np.concatenate(totals[variant])
        tables += [
            f"**{title}**",
            "",
            *header,
            *sections[variant],
            f"| **all** | {len(every)} | {np.mean(np.abs(every)):.3f} | "
            f"{np.quantile(np.abs(every), 0.9):.3f} | {np.mean(every):+.3f} | | | |",
            "",
        ]
    table = "\n".join(
        [
            "## Offline grounding judge: distractor passages",
            "",
            f"Command: `.venv/bin/python benchmarks/judge_distractors.py --rows {args.rows} --write`  ",
            f"Run: {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
            f"{time.perf_counter() - started:.0f}s.",
            "Sampled report rows; default judge (`balanced`). Δ = support score after − before "
            "(positive: looks more supported). Distractors: passages of ≤ 120 words from other "
            "documents of the same dataset, the row's own context at a random position.",
            "",
            *tables,
        ]
    )
    print(table)
    if args.write:
        write_section("judge_distractors", table)


if __name__ == "__main__":
    main()
