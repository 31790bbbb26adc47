"""Scoring throughput through Prefect task runners: in-process threads vs a 2-worker Dask cluster.

    .venv/bin/python benchmarks/fanout.py [--cases 4000] [--repeats 3] [--batch N] [--write]

Builds a replay project of ``--cases`` cases (about 80-word outputs with names, e-mail
addresses and card numbers in some of them) scored by the ``policy`` suite with the
personal-data pack (``pii.yaml``: rules and spaCy NER) plus ``cost`` and ``latency``:
CPU-bound Python scoring. The batches (at most ``SCORING_BATCH`` cases each, as many per
worker) go through the production path, ``flows.evaluate.submit_batches`` and the
``score-batch`` task over the engine's ``score_shard``, submitted all at once inside a
Prefect flow to (a) Prefect's thread-pool runner in this process and (b) ``DaskTaskRunner``
on a local cluster of 2 worker processes (1 thread each, configured as ``--task-runner
dask`` does). Scorers and models are warmed up first in every process (as a long nightly run
amortises them), each runner's first flow is not timed, and the cluster's start is timed
separately. The median of ``--repeats`` timed runs of each is reported, with the CPU seconds
each process spent (the flow's, the Prefect server's, each worker's): on a machine other work
shares, CPU time says more than wall time about what each runner costs.
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


def _cpu_s() -> float:
    """CPU seconds this process has used (every thread)."""
    return time.process_time()


def _process_cpu_s(pid: int) -> float:
    """CPU seconds another process of this machine has used (user + system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def score_all(contract: str, spec: str) -> tuple[float, float]:
    """Score every case of the project in batches on the runner ``spec``.

    Returns the seconds it took and the CPU seconds this process spent meanwhile.

    The cases are read inside the flow, not passed to it or captured by it: a flow's
    parameters and (for a flow defined in a script) its closure travel with every task's
    context to a Dask worker, which would measure shipping the dataset instead of scoring.
    """
    from evals.contract import load_contract
    from evals.runs import prepare
    from flows._runners import task_runners
    from flows.evaluate import submit_batches

    plan = prepare(load_contract(Path(contract)))
    cases = list(plan.dataset.cases)
    outputs = plan.target.generate(cases, None, None)
    started, cpu = time.perf_counter(), _cpu_s()
    with task_runners(spec) as factory, factory() as runner:
        futures = submit_batches(runner, contract, cases, outputs)
        scored = [f.result() for f in futures]
    assert sum(len(next(iter(s.values()))) for s in scored) == len(cases)
    return time.perf_counter() - started, _cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--batch",
        type=int,
        help="cases per scoring task instead of flows.evaluate.SCORING_BATCH (not recorded)",
    )
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.batch is not None:
        if args.write:
            parser.error("--batch measures another batch size than runs use; it is not recorded")
        import flows.evaluate

        flows.evaluate.SCORING_BATCH = args.batch  # batches are cut in this process

    from distributed import Client
    from prefect import flow
    from prefect.server.api.server import SubprocessASGIServer

    from flows._prefect import local_prefect
    from flows._runners import local_cluster
    from flows.evaluate import batch_bounds

    folder = Path(tempfile.mkdtemp(prefix="impactgate-fanout-"))
    contract = str(build_project(folder, args.cases))
    n = args.cases
    bounds = batch_bounds(n, 2)  # what submit_batches makes for 2 single-thread workers
    tasks, size = len(bounds), max(end - start for start, end in bounds)
    run = flow(name="fanout-benchmark")(score_all)

    timings: dict[str, list[float]] = {"thread": [], "dask": []}
    cpu: dict[str, dict[str, list[float]]] = {"thread": {}, "dask": {}}

    def record(kind: str, part: str, seconds: float) -> None:
        cpu[kind].setdefault(part, []).append(seconds)

    load_before = os.getloadavg()[0]
    with local_prefect():
        server = SubprocessASGIServer().server_process
        server_cpu = (lambda: _process_cpu_s(server.pid)) if server else (lambda: 0.0)
        _warm(contract)
        run(contract, "thread")  # Prefect's first flow call and task-run set-up, not timed
        for _ in range(args.repeats):
            api = server_cpu()
            seconds, mine = run(contract, "thread")
            timings["thread"].append(seconds)
            record("thread", "flow process", mine)
            record("thread", "Prefect server", server_cpu() - api)
        started = time.perf_counter()
        with local_cluster(2) as cluster, Client(cluster) as client:
            cluster_start = time.perf_counter() - started
            started = time.perf_counter()
            built = client.run(_warm, contract)
            warm_s = time.perf_counter() - started
            assert all(n == 1 for n in built.values()), built
            run(contract, cluster.scheduler_address)  # each worker's first task run, not timed
            for _ in range(args.repeats):
                api, workers = server_cpu(), client.run(_cpu_s)
                seconds, mine = run(contract, cluster.scheduler_address)
                timings["dask"].append(seconds)
                record("dask", "flow process", mine)
                record("dask", "Prefect server", server_cpu() - api)
                after = client.run(_cpu_s)
                for i, (worker, used) in enumerate(sorted(after.items())):
                    record("dask", f"worker {i + 1}", used - workers[worker])
            sets = client.run(lambda: __import__("evals.runs").runs.loaded_scorer_sets())
    load_after = os.getloadavg()[0]
    medians = {k: statistics.median(v) for k, v in timings.items()}
    runs = {k: ", ".join(f"{t:.2f}" for t in v) for k, v in timings.items()}
    rates = {k: n / v for k, v in medians.items()}
    speedup = rates["dask"] / rates["thread"]
    cpu_medians = {
        k: {p: statistics.median(v) for p, v in parts.items()} for k, parts in cpu.items()
    }
    # On idle cores the thread pool is held to about one core by the GIL, and the two workers
    # run side by side while the flow process and the API server use what is left.
    thread_cpu = sum(cpu_medians["thread"].values())
    worker_cpu = [v for p, v in cpu_medians["dask"].items() if p.startswith("worker")]
    dask_cpu = sum(cpu_medians["dask"].values())
    projected = thread_cpu / max(max(worker_cpu), dask_cpu / 2)
    overhead_per_task = (sum(worker_cpu) - cpu_medians["thread"]["flow process"]) / tasks
    result: dict[str, Any] = {
        "cases": n,
        "batch": size,
        "tasks": tasks,
        "seconds": timings,
        "cases_per_s": rates,
        "speedup": speedup,
        "cpu_seconds_median": cpu_medians,
        "idle_core_speedup_estimate": projected,
        "worker_cpu_over_in_process_per_task_s": overhead_per_task,
        "cluster_start_s": cluster_start,
        "load_average_1min": [load_before, load_after],
        "worker_warm_up_s": warm_s,
        "scorer_sets_per_worker_after": sorted(sets.values()),
    }
    print(json.dumps(result, indent=2))
    if args.write:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        cpu_rows = "\n".join(
            f"| {kind} | {part} | {seconds:.2f} |"
            for kind, parts in cpu_medians.items()
            for part, seconds in parts.items()
        )
        write_section(
            "fanout",
            f"""## Fan-out: scoring in-process vs a 2-worker local Dask cluster

Command: `.venv/bin/python benchmarks/fanout.py --cases {n} --repeats {args.repeats} --write`

Run: {day}, {platform.machine()}, {os.cpu_count()} cores shared with other work. {n} replay cases
(~80-word outputs) scored by `policy` (`pii.yaml`: rules + spaCy NER), `cost` and `latency`, in
{tasks} `score-batch` tasks of up to {size} cases submitted at once inside a Prefect flow
(`flows.evaluate.submit_batches`, the production path); scorers warmed up in every process
and each runner's first flow untimed; median of {args.repeats} runs.

| task runner | seconds (runs) | cases/s |
|---|---|---|
| thread pool, in process | {medians["thread"]:.2f} ({runs["thread"]}) | **{rates["thread"]:.0f}** |
| Dask, 2 worker processes × 1 thread | {medians["dask"]:.2f} ({runs["dask"]}) | **{rates["dask"]:.0f}** |

Speed-up: **{speedup:.2f}×** (target ≥ 1.7×). The machine's 1-minute load average was
{load_before:.1f} before and {load_after:.1f} after (2 cores).

CPU seconds a run (median), which other work on the machine changes much less than wall time:

| runner | process | CPU s |
|---|---|---|
{cpu_rows}

With both cores free, the thread pool is held to about one core by the GIL while the two
workers score side by side: {thread_cpu:.2f} CPU s for the thread pool (its process and the
Prefect server) against the busier worker's {max(worker_cpu):.2f} s (and {dask_cpu:.2f} s over
every process, for two cores) puts the speed-up on idle cores at about **{projected:.2f}×**
(an estimate from CPU time, not a measurement). The workers together spend
{overhead_per_task * 1000:.0f} ms more CPU a task than the in-process scoring: Prefect's task
engine in the worker and the batch and its scores pickled both ways (what two plain
processes scoring side by side cost a case: benchmarks/scoring_processes.py). Starting the
cluster took {cluster_start:.1f} s and loading the scorers in both workers {warm_s:.1f} s, paid once per run;
afterwards each worker still holds {max(sets.values())} scorer set.
""",
        )


if __name__ == "__main__":
    main()
