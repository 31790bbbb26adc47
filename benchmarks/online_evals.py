"""How fast are online evals: sampling and case building, judging a sample, golden coverage?

    .venv/bin/python benchmarks/online_evals.py [--traces 100000] [--judged 1000]
        [--coverage-inputs 50000] [--write]

Data: one agent's production traces (``benchmarks/telemetry_data.py``: the billing
assistant's five-span traces — agent, retrieval with two passages, chat, tool call, chat —
with GenAI attributes), one every two seconds, with questions drawn from 1,000 distinct ones;
one trace in 100 ends in an error, one in 100 is escalated, and a quarter carry one of three
routes. Ingested once (content kept as sent; masking is the ingest benchmark's subject).

1. **Sampling and case building**: ``trace_summaries`` over every trace of the window (one
   DuckDB query), ``draw_sample`` (n = 200, stratified, errors and escalations kept) and
   ``build_cases`` for the sample. Target < 10 s for 100,000 traces.
2. **An offline online-eval**: ``RunSession.open_production`` and ``run`` over ``--judged``
   sampled traces (the last six hours, about 10,800 traces, errors and escalations kept on
   top) of the billing assistant's contract (grounding and hallucination with the
   offline judge, policy with its rule packs, cost, latency), committed to the store. Target
   < 2 min for 1,000 traces on 2 cores.
3. **Golden coverage**: ``golden_coverage`` of ``--coverage-inputs`` production inputs against
   the billing assistant's golden set with the bundled embedding model (the model load is
   timed separately), with production questions drawn from 5,000 distinct ones. Target < 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from results_file import code_commit, write_section  # noqa: E402
from telemetry_data import T0, _attr, _request, trace  # noqa: E402
from telemetry_ingest import raw_policies  # noqa: E402

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from evals.contract import load_contract  # noqa: E402
from evals.dataset import load_dataset  # noqa: E402
from evals.online import (  # noqa: E402
    build_cases,
    draw_sample,
    golden_coverage,
    trace_summaries,
)
from evals.runs import RunSession  # noqa: E402
from evals.store import ResultsStore  # noqa: E402
from evals.telemetry import TelemetryMasker, ingest  # noqa: E402

AGENT = "billing-assistant"
ROUTES = ("refunds", "invoices", "plans")


def write_traces(path: Path, n: int, seed: int = 11) -> None:
    """``n`` traces of the billing assistant as a Collector file (100 traces a line)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        batch: list[dict[str, Any]] = []
        for number in range(n):
            spans = trace(rng, number, 1000, AGENT, T0 + number * 2_000_000_000)
            root = spans[0]
            if number % 100 == 7:
                root["status"] = {"code": 2, "message": "upstream timeout"}
            if number % 100 == 53:
                root["attributes"].append(_attr("impactgate.escalated", "true"))
            if number % 4 == 0:
                root["attributes"].append(_attr("impactgate.route", ROUTES[number % 3]))
            batch.extend(spans)
            if (number + 1) % 100 == 0:
                handle.write(json.dumps(_request({AGENT: batch}), separators=(",", ":")) + "\n")
                batch = []
        if batch:
            handle.write(json.dumps(_request({AGENT: batch}), separators=(",", ":")) + "\n")


def project(work: Path, judged: int) -> Path:
    """A copy of the repository's policies and datasets, the billing assistant judging more.

    Its contract gets a production block judging ``judged`` traces (coverage is measured
    separately).
    """
    policies = raw_policies(work / "policies")
    shutil.copytree(ROOT / "datasets", work / "datasets")
    contract = policies / f"{AGENT}.yaml"
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    data["evals"]["production"] = {"n": judged, "window": "6h", "coverage": False}
    for level in data["autonomy"]["levels"].values():  # coverage is timed on its own (step 3)
        level.get("gates", {}).pop("golden_coverage", None)
    contract.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return contract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--judged", type=int, default=1000)
    parser.add_argument("--coverage-inputs", type=int, default=50_000)
    parser.add_argument("--write", action="store_true", help="record benchmarks/RESULTS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ig-online-bench-"))
    data = work / "traces.jsonl"
    write_traces(data, args.traces)
    contract_path = project(work, args.judged)
    results = work / "results"
    started = time.perf_counter()
    report = ingest([data], results, masking=TelemetryMasker(work / "policies"), workers=2)
    assert report.ok, report.to_dict()
    ingest_s = time.perf_counter() - started
    since = datetime.fromtimestamp(T0 / 1e9, UTC)
    until = datetime.fromtimestamp(T0 / 1e9 + args.traces * 2 + 1, UTC)
    store = ResultsStore(results)

    # 1. sampling and case building
    started = time.perf_counter()
    traces, _ = trace_summaries(store, AGENT, since, until)
    summarised = time.perf_counter() - started
    sample = draw_sample(traces, 200, ["route", "tool_path", "outcome"], "0")
    sampled = time.perf_counter() - started
    built = build_cases(store, sample.traces)
    case_s = time.perf_counter() - started
    assert len(traces) == args.traces, len(traces)
    assert all(b.case is not None for b in built)

    # 3. golden coverage over --coverage-inputs inputs
    from evals.judges import default_embedder

    started = time.perf_counter()
    embedder = default_embedder()
    load_s = time.perf_counter() - started
    rng = random.Random(5)
    stems = [
        "Why was I charged twice for invoice {n}?",
        "How do I change the delivery address of order {n}?",
        "Can I get a refund for the duplicate payment on {n}?",
        "My plan renewed at a higher price on {n}, why?",
        "Where do I download the invoice for {n}?",
    ]
    distinct = [stems[i % len(stems)].format(n=10_000 + i) for i in range(5000)]
    inputs = [
        (f"t{i}", distinct[rng.randrange(len(distinct))]) for i in range(args.coverage_inputs)
    ]
    contract = load_contract(contract_path)
    golden = load_dataset(contract.resolve(contract.evals.dataset)).cases
    started = time.perf_counter()
    coverage = golden_coverage(inputs, golden, threshold=0.75, embedder=embedder)
    coverage_s = time.perf_counter() - started

    # 2. an offline online-eval of --judged traces
    started = time.perf_counter()
    with RunSession.open_production(contract, str(results), until=until) as session:
        opened = time.perf_counter() - started
        outcome = session.run(act=False)
    judge_s = time.perf_counter() - started
    record = outcome.result.record
    assert record.production is not None
    judged = record.production["judged"]
    started = time.perf_counter()
    with RunSession.open_production(contract, str(results), until=until) as session:
        session.run(act=False)
        reused = session.reused
    rerun_s = time.perf_counter() - started

    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    lines = [
        "## Online evals (`benchmarks/online_evals.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} at commit `{code_commit()}` on {cpu}, "
        f"2 cores shared with other jobs (load average {load:.1f} when it finished). "
        f"{args.traces:,} traces of one agent ({args.traces * 5:,} spans, ingested in "
        f"{ingest_s:.1f} s, not part of any timing below).",
        "",
        "| step | measured | target |",
        "|---|---|---|",
        f"| trace summaries of {args.traces:,} traces (one DuckDB query) | {summarised:.2f} s | |",
        f"| + stratified sample (n = 200; {len(sample.forced)} errors and escalations kept) "
        f"| {sampled:.2f} s | |",
        f"| + building the {len(built)} sampled traces' cases | **{case_s:.2f} s** | < 10 s |",
        f"| offline online-eval: open (sample {args.judged:,} + build) | {opened:.1f} s | |",
        f"| offline online-eval of {judged:,} traces (grounding, hallucination, policy, cost, "
        f"latency; committed) | **{judge_s:.1f} s** | < 120 s |",
        f"| the same night again ({reused:,} traces' scores reused, nothing judged) "
        f"| {rerun_s:.1f} s | |",
        f"| embedding model load | {load_s:.1f} s | |",
        f"| golden coverage of {args.coverage_inputs:,} inputs (5,000 distinct) against "
        f"{len(golden)} golden cases | **{coverage_s:.1f} s** | < 60 s |",
        "",
        f"Coverage found {coverage.metric.value:.3f} covered and "
        f"{len(coverage.clusters)} uncovered clusters (largest: {coverage.clusters[0].size:,} "
        "inputs)."
        if coverage.clusters
        else f"Coverage found {coverage.metric.value:.3f} covered, no uncovered cluster.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("online", text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
