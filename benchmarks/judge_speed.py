"""How fast is the offline grounding judge on RAG-shaped input?

    .venv/bin/python benchmarks/judge_speed.py [--repeat 3] [--write]

Two workloads, each timed ``--repeat`` times (the median is recorded, every run printed):

- *short*: 200 items from 50 benchmark documents (QAGS and SummEdits, first by id): three
  passages of consecutive sentences (at least 60 words each) and four ~100-word answers per
  document, made of that dataset's summary sentences, through the production path (the
  faithfulness scorer over one batch, as a run's scoring task does; a fresh scorer each time).
- *RAG size*: 120 items, each with its own document and a context of 300–1,000 words (drawn
  uniformly): the document cut into passages of up to 120 words, joined by passages of other
  documents, as a retriever returns them; a ~100-word answer made of the document's summary and
  some of its sentences. Timed *cold* (a new judge, an empty persistent cache) and *rerun*
  (a new judge over the same contexts with other answers, the persistent cache kept: a
  nightly run after the agent changed).

The model is loaded and warmed up on other items first. The machine is shared: the load
average before and after each run is printed, and recorded with the median.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from faithfulness_data import Row, load, passage_from  # noqa: E402
from results_file import write_section  # noqa: E402

from evals.dataset import Case  # noqa: E402
from evals.judges import OfflineGroundingJudge, split_sentences  # noqa: E402
from evals.scorers import faithfulness, run_scorer  # noqa: E402
from evals.targets import Output  # noqa: E402

Item = tuple[str, list[str]]


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


def short_items(documents: int, offset: int) -> tuple[list[Case], list[Output]]:
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


def _cut(document: str, words: int, size: int = 120) -> list[str]:
    """The first ``words`` words of a document as passages of whole sentences (≤ ``size``)."""
    out: list[str] = []
    current: list[str] = []
    total = 0
    for sentence in split_sentences(document):
        length = len(sentence.split())
        if total + length > words and out:
            break
        if current and sum(len(s.split()) for s in current) + length > size:
            out.append(" ".join(current))
            current = []
        current.append(sentence)
        total += length
    if current:
        out.append(" ".join(current))
    return out


def rag_items(count: int, seed: int, answer_seed: int) -> list[Item]:
    """RAG-sized items: each answer's document among passages of other documents."""
    rows = sorted((r for r in load() if r.dataset in ("qags", "summedits")), key=lambda r: r.id)
    first: dict[str, Row] = {}
    for r in rows:
        first.setdefault(r.context, r)
    documents = [r for r in first.values() if len(r.context.split()) >= 150]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(documents))
    chosen = [documents[int(i)] for i in order[:count]]
    pool = [documents[int(i)].context for i in order[count:]]
    answers = np.random.default_rng(answer_seed)
    items: list[Item] = []
    for row in chosen:
        target = int(rng.integers(300, 1001))
        own = _cut(row.context, int(rng.integers(150, min(target, 700) + 1)))
        contexts = list(own)
        while sum(len(p.split()) for p in contexts) < target:
            other = pool[int(rng.integers(0, len(pool)))]
            contexts.insert(int(rng.integers(0, len(contexts) + 1)), passage_from(other, rng))
        sentences = [s for p in own for s in split_sentences(p)]
        words = row.answer.split()
        for k in answers.permutation(len(sentences)):
            if len(words) >= 100:
                break
            words += sentences[int(k)].split()
        items.append((" ".join(words), contexts))
    return items


def _load() -> float:
    return os.getloadavg()[0]


CPU: list[tuple[str, float, int]] = []
"""(workload, CPU seconds of this process, answers) of every timed run."""


def time_short(repeat: int) -> tuple[list[float], float, float, int, list[float]]:
    warm_cases, warm_outputs = short_items(15, offset=100)
    run_scorer("faithfulness", faithfulness(), warm_cases, warm_outputs)
    cases, outputs = short_items(50, offset=0)
    seconds, loads = [], []
    claims = 0.0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["IMPACTGATE_CACHE_DIR"] = cache
            from evals.scorers import _grounding

            _grounding._JUDGES.clear()  # a new judge: nothing cached in the process either
            scorer = faithfulness()
            before = _load()
            started, cpu = time.perf_counter(), time.process_time()
            scores = run_scorer("faithfulness", scorer, cases, outputs)
            seconds.append(time.perf_counter() - started)
            CPU.append(("short", time.process_time() - cpu, len(cases)))
            loads.append(max(before, _load()))
            claims = sum(len(s.metadata.get("claims", [])) for s in scores) / len(scores)
    words = sum(len((o.text or "").split()) for o in outputs) / len(outputs)
    return seconds, words, claims, len(cases), loads


def time_rag(repeat: int) -> dict[str, object]:
    OfflineGroundingJudge(sentence_cache=False).judge(rag_items(10, seed=99, answer_seed=99))
    items = rag_items(120, seed=0, answer_seed=1)
    rerun_items = rag_items(120, seed=0, answer_seed=2)
    cold, rerun, loads = [], [], []
    claims = 0.0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["IMPACTGATE_CACHE_DIR"] = cache
            before = _load()
            judge = OfflineGroundingJudge()
            started, cpu = time.perf_counter(), time.process_time()
            verdicts = judge.judge(items)
            cold.append(time.perf_counter() - started)
            CPU.append(("cold", time.process_time() - cpu, len(items)))
            encoded = judge.words.encoded
            again = OfflineGroundingJudge()
            started, cpu = time.perf_counter(), time.process_time()
            again.judge(rerun_items)
            rerun.append(time.perf_counter() - started)
            CPU.append(("rerun", time.process_time() - cpu, len(rerun_items)))
            loads.append(max(before, _load()))
            claims = sum(len(v.claims) for v in verdicts) / len(verdicts)
    context_words = [sum(len(p.split()) for p in c) for _, c in items]
    sentences = sum(len(split_sentences(p)) for _, c in items for p in c)
    return {
        "items": len(items),
        "context_words": float(np.mean(context_words)),
        "passages": float(np.mean([len(c) for _, c in items])),
        "answer_words": float(np.mean([len(a.split()) for a, _ in items])),
        "claims": claims,
        "cold": cold,
        "rerun": rerun,
        "loads": loads,
        "encoded_share": encoded / sentences,
    }


def _per_cpu(workload: str) -> str:
    rates = [n / s for w, s, n in CPU if w == workload and s > 0]
    return f"**{statistics.median(rates):.1f}**/s" if rates else "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    seconds, words, claims, n, short_loads = time_short(args.repeat)
    print("short:", [f"{n / s:.1f}/s" for s in seconds], "load", short_loads, flush=True)
    rag = time_rag(args.repeat)
    cold = [rag["items"] / s for s in rag["cold"]]  # type: ignore[attr-defined, operator]
    rerun = [rag["items"] / s for s in rag["rerun"]]  # type: ignore[attr-defined, operator]
    print("rag cold:", [f"{r:.1f}/s" for r in cold], "rerun:", [f"{r:.1f}/s" for r in rerun])
    median = statistics.median(seconds)
    table = "\n".join(
        [
            "## Offline grounding judge speed",
            "",
            f"Command: `.venv/bin/python benchmarks/judge_speed.py --repeat {args.repeat} --write`  ",
            f"Run: {datetime.now(UTC).strftime('%Y-%m-%d')}, {platform.machine()}, 2 cores "
            f"shared; median of {args.repeat} runs (load average during the runs: "
            f"{min(short_loads + rag['loads']):.1f}–{max(short_loads + rag['loads']):.1f}).",  # type: ignore[operator]
            "",
            "| workload | items | answer words | context | claims per answer | answers/s | target |",
            "|---|---|---|---|---|---|---|",
            f"| short, production scorer | {n} | {words:.0f} | 3 passages × ≥ 60 words | "
            f"{claims:.1f} | **{n / median:.1f}** | ≥ 20 |",
            f"| RAG size, cold | {rag['items']} | {rag['answer_words']:.0f} | "
            f"300–1,000 words (mean {rag['context_words']:.0f}, {rag['passages']:.1f} passages) | "
            f"{rag['claims']:.1f} | **{statistics.median(cold):.1f}** | ≥ 8 |",
            f"| RAG size, rerun (same contexts, new answers) | {rag['items']} | "
            f"{rag['answer_words']:.0f} | same | | **{statistics.median(rerun):.1f}** | |",
            "",
            "Answers per CPU second (this process's user + system time, median): short "
            f"{_per_cpu('short')}, RAG cold {_per_cpu('cold')}, RAG rerun {_per_cpu('rerun')}. "
            "The wall-clock rates above depend on what else the shared cores run, and so does "
            "CPU time under contention (the model's threads spin while they wait for a core), "
            "so both are lower bounds for two idle cores, not estimates of it.",
            "",
            f"Cold, the model read {rag['encoded_share']:.0%} of the context sentences: the "
            "others share too few words with any claim to be candidate evidence "
            "(docs/design/grounding-judge.md).",
        ]
    )
    print(table)
    if args.write:
        write_section("judge_speed", table)


if __name__ == "__main__":
    main()
