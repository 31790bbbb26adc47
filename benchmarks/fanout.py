"""Scoring throughput through Prefect task runners: in-process threads vs a 2-worker Dask cluster.

    .venv/bin/python benchmarks/fanout.py [--cases 4000] [--write]

Builds a replay project of ``--cases`` cases (about 80-word outputs with names, e-mail
addresses and card numbers in some of them) scored by the ``policy`` suite with the
personal-data pack (``pii.yaml``: rules and spaCy NER) plus ``cost`` and ``latency``: CPU-bound Python scoring.
The batches (``SCORING_BATCH`` cases each) go through the production path, the
``score-batch`` task over the engine's ``score_shard``, submitted all at once inside a
Prefect flow to (a) Prefect's thread-pool runner in this process and (b) ``DaskTaskRunner``
on a local cluster of 2 worker processes (1 thread each). Scorers and models are warmed up
first in every process (as a long nightly run amortises them), and the cluster's start is
timed separately. The median of three timed runs of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from results_file import write_section  # noqa: E402

TEXT = (
    "refunds go back to the original payment method within five business days and the "
    "customer can track the status from the billing page of the account while support "
    "answers questions about invoices credits and plan changes for every region"
)
WORDS = TEXT.split(maxsplit=-1)


def build_project(folder: Path, n: int) -> Path:
    """A replay project of ``n`` cases scored by policy (pii.yaml with NER), cost, latency."""
    import yaml

    (folder / "policies" / "rules").mkdir(parents=True)
    for pack in ("pii.yaml",):
        text = (ROOT / "policies" / "rules" / pack).read_text(encoding="utf-8")
        (folder / "policies" / "rules" / pack).write_text(text, encoding="utf-8")
    data = folder / "datasets"
    data.mkdir()
    with (
        (data / "cases.jsonl").open("w", encoding="utf-8") as cases,
        (data / "outputs.jsonl").open("w", encoding="utf-8") as outputs,
    ):
        for i in range(n):
            words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(80)]
            if i % 3 == 0:
                words[10:10] = ["Maria", "Gonzalez", "wrote", "from", f"maria{i}@mail.example"]
            if i % 5 == 0:
                words[40:40] = ["card", "4111", "1111", "1111", "1111"]
            case = {"id": f"c{i}", "input": f"question {i} about my refund", "contexts": []}
            cases.write(json.dumps(case) + "\n")
            output = {
                "case_id": f"c{i}",
                "version": "v1",
                "output": " ".join(words),
                "latency_s": 0.5,
                "usage": {"prompt_tokens": 100, "completion_tokens": 20},
            }
            outputs.write(json.dumps(output) + "\n")
    from tests.helpers import CONTRACT

    contract = json.loads(json.dumps(CONTRACT))
    contract["agent"] = "bench-agent"
    contract["evals"]["dataset"] = "datasets/cases.jsonl"
    contract["evals"]["target"] = {
        "kind": "replay",
        "version": "v1",
        "outputs": "datasets/outputs.jsonl",
    }
    contract["evals"]["suites"] = ["policy", "cost", "latency"]
    contract["evals"]["policy"] = {"rule_packs": ["policies/rules/pii.yaml"]}
    contract["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    path = folder / "policies" / "bench-agent.yaml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return path


def _warm(contract: str) -> int:
    """Build the scorers (and load their models) in this process, on one small batch."""
    from evals.contract import load_contract
    from evals.runs import loaded_scorer_sets, prepare, score_shard

    plan = prepare(load_contract(Path(contract)))
    cases = list(plan.dataset.cases)[:4]
    score_shard(contract, cases, plan.target.generate(cases, None, None))
    return loaded_scorer_sets()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()

    from distributed import Client, LocalCluster
    from prefect import flow

    from evals.contract import load_contract
    from evals.runs import prepare
    from flows._prefect import local_prefect
    from flows._runners import _worker_env, task_runners
    from flows.evaluate import SCORING_BATCH, score_batch

    folder = Path(tempfile.mkdtemp(prefix="impactgate-fanout-"))
    contract = str(build_project(folder, args.cases))
    plan = prepare(load_contract(Path(contract)))
    cases = list(plan.dataset.cases)
    outputs = plan.target.generate(cases, None, None)

    @flow(name="fanout-benchmark")
    def score_all(spec: str) -> int:
        with task_runners(spec) as factory, factory() as runner:
            futures = [
                runner.submit(
                    score_batch,
                    parameters={
                        "contract": contract,
                        "cases": cases[i : i + SCORING_BATCH],
                        "outputs": outputs[i : i + SCORING_BATCH],
                    },
                )
                for i in range(0, len(cases), SCORING_BATCH)
            ]
            scored = [f.result() for f in futures]
        return sum(len(next(iter(s.values()))) for s in scored)

    timings: dict[str, list[float]] = {"thread": [], "dask": []}
    load_before = os.getloadavg()[0]
    with local_prefect():
        _warm(contract)
        score_all("thread")  # Prefect's first flow call and task-run set-up, not timed
        for _ in range(args.repeats):
            started = time.perf_counter()
            assert score_all("thread") == len(cases)
            timings["thread"].append(time.perf_counter() - started)
        started = time.perf_counter()
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            host="127.0.0.1", env=_worker_env(),
        ) as cluster, Client(cluster) as client:  # fmt: skip
            cluster_start = time.perf_counter() - started
            started = time.perf_counter()
            built = client.run(_warm, contract)
            warm_s = time.perf_counter() - started
            assert all(n == 1 for n in built.values()), built
            for _ in range(args.repeats):
                started = time.perf_counter()
                assert score_all(cluster.scheduler_address) == len(cases)
                timings["dask"].append(time.perf_counter() - started)
            after = client.run(lambda: __import__("evals.runs").runs.loaded_scorer_sets())
    load_after = os.getloadavg()[0]
    medians = {k: statistics.median(v) for k, v in timings.items()}
    runs = {k: ", ".join(f"{t:.2f}" for t in v) for k, v in timings.items()}
    rates = {k: len(cases) / v for k, v in medians.items()}
    speedup = rates["dask"] / rates["thread"]
    result: dict[str, Any] = {
        "cases": len(cases),
        "batch": SCORING_BATCH,
        "seconds": timings,
        "cases_per_s": rates,
        "speedup": speedup,
        "cluster_start_s": cluster_start,
        "load_average_1min": [load_before, load_after],
        "worker_warm_up_s": warm_s,
        "scorer_sets_per_worker_after": sorted(after.values()),
    }
    print(json.dumps(result, indent=2))
    if args.write:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        write_section(
            "fanout",
            f"""## Fan-out: scoring in-process vs a 2-worker local Dask cluster

Command: `.venv/bin/python benchmarks/fanout.py --cases {len(cases)} --write`

Run: {day}, {platform.machine()}, {os.cpu_count()} cores shared with other work. {len(cases)} replay cases
(~80-word outputs) scored by `policy` (`pii.yaml`: rules + spaCy NER), `cost` and `latency`, in
{-(-len(cases) // SCORING_BATCH)} `score-batch` tasks of {SCORING_BATCH} cases submitted at once inside a Prefect flow;
scorers warmed up in every process first; median of {args.repeats} runs.

| task runner | seconds (runs) | cases/s |
|---|---|---|
| thread pool, in process | {medians["thread"]:.2f} ({runs["thread"]}) | **{rates["thread"]:.0f}** |
| Dask, 2 worker processes × 1 thread | {medians["dask"]:.2f} ({runs["dask"]}) | **{rates["dask"]:.0f}** |

Speed-up: **{speedup:.2f}×** (target ≥ 1.7×). The machine's 1-minute load average was
{load_before:.1f} before and {load_after:.1f} after (2 cores): other work held the cores, so
a second worker process had little idle CPU to use. Starting the cluster took {cluster_start:.1f} s and
loading the scorers in both workers {warm_s:.1f} s, paid once per run (`--task-runner dask` starts one
cluster for the whole nightly run); after {args.repeats} runs each worker still holds
{max(after.values())} scorer set (built once, reused by every batch).
""",
        )


if __name__ == "__main__":
    main()
