"""How fast is the offline grounding judge on RAG-shaped input?

    .venv/bin/python benchmarks/judge_speed.py [--write]

Builds 200 items from 50 benchmark documents (QAGS and SummEdits, first by id): three passages
of consecutive sentences (at least 60 words each) and four ~100-word answers per document, made
of that dataset's summary sentences. The items go through the production path: the
faithfulness scorer over one batch, as a run's scoring task does. The model is warmed up on
other items first; context encodings are shared by the answers of a document, as in a run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from faithfulness_data import load  # noqa: E402
from results_file import write_section  # noqa: E402

from evals.dataset import Case  # noqa: E402
from evals.judges import split_sentences  # noqa: E402
from evals.scorers import faithfulness, run_scorer  # noqa: E402
from evals.targets import Output  # noqa: E402


def passages(document: str, count: int = 3, min_words: int = 60) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for sentence in split_sentences(document):
        current.append(sentence)
        if sum(len(s.split()) for s in current) >= min_words:
            out.append(" ".join(current))
            current = []
            if len(out) == count:
                break
    return out


def build_items(documents: int, offset: int) -> tuple[list[Case], list[Output]]:
    rows = sorted((r for r in load() if r.dataset in ("qags", "summedits")), key=lambda r: r.id)
    by_context: dict[str, list[str]] = {}
    for r in rows:
        by_context.setdefault(r.context, []).append(r.answer)
    summaries = [s for r in rows for s in split_sentences(r.answer)]
    cases, outputs = [], []
    chosen = [c for c in by_context if len(passages(c)) == 3][offset : offset + documents]
    cursor = 0
    for d, context in enumerate(chosen):
        for a in range(4):
            words: list[str] = []
            while len(words) < 100:
                words += summaries[cursor % len(summaries)].split()
                cursor += 1
            case = Case(
                id=f"d{d}-a{a}", input="Summarise the document.", contexts=passages(context)
            )
            cases.append(case)
            outputs.append(Output(case.id, " ".join(words)))
    return cases, outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    scorer = faithfulness()
    warm_cases, warm_outputs = build_items(15, offset=100)
    run_scorer("faithfulness", scorer, warm_cases, warm_outputs)
    cases, outputs = build_items(50, offset=0)
    started = time.perf_counter()
    scores = run_scorer("faithfulness", scorer, cases, outputs)
    seconds = time.perf_counter() - started
    claims = sum(len(s.metadata.get("claims", [])) for s in scores) / len(scores)
    words = sum(len((o.text or "").split()) for o in outputs) / len(outputs)
    rate = len(cases) / seconds
    table = "\n".join(
        [
            "## Offline grounding judge speed",
            "",
            "Command: `.venv/bin/python benchmarks/judge_speed.py --write`  ",
            f"Run: {datetime.now(UTC).strftime('%Y-%m-%d')}, {platform.machine()}, 2 cores shared.",
            "",
            "| items | answer words (mean) | passages × words | claims per answer | seconds | answers/s | target |",
            "|---|---|---|---|---|---|---|",
            f"| {len(cases)} | {words:.0f} | 3 × ≥60 | {claims:.1f} | {seconds:.1f} | **{rate:.1f}** | ≥ 20 |",
        ]
    )
    print(table)
    if args.write:
        write_section("judge_speed", table)


if __name__ == "__main__":
    main()
