"""The offline judge of this checkout against an earlier commit's, on the same items and machine.

    .venv/bin/python benchmarks/judge_before_after.py --old c342161 [--write]

The earlier commit's ``evals/`` is extracted with ``git archive`` into a temporary folder (the
repository is only read). Both judges, each in its own process with an empty cache folder and
warmed up on other items first, then judge:

- *speed*: the 120 RAG-sized items of judge_speed.py (300–1,000-word contexts), cold; wall
  time and this process's CPU time;
- *distractors*: 100 seeded ``report`` rows of each faithfulness dataset, against their
  context and against it plus 2–5 passages of other documents (faithfulness_data.py): how far
  the support score moves and how many verdicts flip at the judge's own threshold.

The two run one after the other on shared cores: compare them with each other, not with a
figure measured at another time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, os.getcwd())
from evals._env import apply_offline_defaults
apply_offline_defaults()
import numpy as np
from evals.judges import OfflineGroundingJudge

def judge():
    try:
        return OfflineGroundingJudge(sentence_cache=False)
    except TypeError:  # before the persistent sentence cache existed
        return OfflineGroundingJudge()

data = json.load(open(sys.argv[1]))
judge().judge([(a, c) for a, c in data["warm"]])
j = judge()
t0, c0 = time.perf_counter(), time.process_time()
j.judge([(a, c) for a, c in data["rag"]])
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
load = os.getloadavg()[0]
j = judge()
items = data["dist"]
before = np.array([v.support_score for v in j.judge([(r["answer"], r["context"]) for r in items])])
after = np.array([v.support_score for v in j.judge([(r["answer"], r["distract"]) for r in items])])
t = j.support_threshold
print(json.dumps({
    "per_s": len(data["rag"]) / wall, "per_cpu_s": len(data["rag"]) / cpu, "load": load,
    "mean_abs": float(np.abs(after - before).mean()),
    "p90_abs": float(np.quantile(np.abs(after - before), 0.9)),
    "flips": float(np.mean((before < t) != (after < t))),
}))
"""


def _items(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from faithfulness_data import load, with_distractors
    from judge_speed import rag_items

    rows = [r for r in load() if r.split == "report"]
    rng = np.random.default_rng(0)
    sample = []
    for name in ("begin_true", "halueval_qa", "qags", "summedits"):
        subset = [r for r in rows if r.dataset == name]
        sample += [subset[int(i)] for i in rng.choice(len(subset), size=100, replace=False)]
    distracted = with_distractors(sample, rows, seed=0)
    data = {
        "rag": rag_items(120, seed=0, answer_seed=1),
        "warm": rag_items(10, seed=99, answer_seed=99),
        "dist": [
            {"answer": r.answer, "context": [r.context], "distract": d}
            for r, d in zip(sample, distracted, strict=True)
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def _run(checkout: Path, items: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "IMPACTGATE_CACHE_DIR": cache}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(items)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True, help="the earlier commit")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.old, "evals"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        items = Path(folder) / "items.json"
        _items(items)
        before = _run(old, items)
        after = _run(ROOT, items)
    print(json.dumps({"old": before, "new": after}))
    table = "\n".join(
        [
            "## Offline grounding judge: this change against the previous judge",
            "",
            f"Command: `.venv/bin/python benchmarks/judge_before_after.py --old {args.old} "
            "--write`  ",
            f"Run: {datetime.now(UTC).strftime('%Y-%m-%d')}, {platform.machine()}, 2 cores "
            f"shared, one after the other, {time.perf_counter() - started:.0f}s. Same items, "
            "empty caches, each judge warmed up first.",
            "",
            "| judge | RAG size, cold: answers/s | answers per CPU s | load | distractors: "
            "mean abs Δ support | p90 abs Δ | verdicts flipped |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {name} | **{r['per_s']:.2f}** | {r['per_cpu_s']:.2f} | {r['load']:.1f} | "
                f"{r['mean_abs']:.4f} | {r['p90_abs']:.4f} | {r['flips']:.1%} |"
                for name, r in ((f"`{args.old}`", before), ("this checkout", after))
            ),
        ]
    )
    print(table)
    if args.write:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from results_file import write_section

        write_section("judge_before_after", table)


if __name__ == "__main__":
    main()
