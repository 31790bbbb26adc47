"""Scoring CPU per case in plain processes: alone or two side by side, with or without Dask's heap setting.

    .venv/bin/python benchmarks/scoring_processes.py [--cases 2000] [--repeats 3] [--write]

The fan-out benchmark's cases and scorers (``benchmarks/fanout.py``: ``policy`` with
``pii.yaml`` and spaCy NER, ``cost``, ``latency``), scored by the engine's ``score_shard`` in
batches of ``SCORING_BATCH`` in freshly spawned processes with no Prefect and no Dask: one
process alone, then two side by side, each scoring ``--cases`` cases. Each way runs with
glibc's defaults and with ``MALLOC_TRIM_THRESHOLD_=65536``, what Dask's nannies export to
their workers. A process warms its scorers up before the clock starts and reports the CPU
seconds its scoring took; the median of ``--repeats`` is recorded. It separates what a Dask
worker adds (``benchmarks/fanout.py``) from what running two scoring processes on two cores
costs by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from fanout import _warm, build_project  # noqa: E402
from results_file import code_commit, write_section  # noqa: E402

TRIM = "MALLOC_TRIM_THRESHOLD_"
DASK_TRIM = "65536"
"""What ``distributed.nanny.pre-spawn-environ`` sets by default."""


def score(contract: str, start: int, end: int, done: Any) -> None:
    """A spawned process: warm up, then score cases ``start:end``; send back CPU seconds a case."""
    import time

    from evals.contract import load_contract
    from evals.runs import prepare, score_shard
    from flows.evaluate import SCORING_BATCH

    _warm(contract)
    plan = prepare(load_contract(Path(contract)))
    cases = list(plan.dataset.cases)[start:end]
    outputs = plan.target.generate(cases, None, None)
    cpu = time.process_time()
    for i in range(0, len(cases), SCORING_BATCH):
        score_shard(contract, cases[i : i + SCORING_BATCH], outputs[i : i + SCORING_BATCH])
    done.put((time.process_time() - cpu) / len(cases))


@contextlib.contextmanager
def environment(trim: str | None) -> Iterator[None]:
    """``MALLOC_TRIM_THRESHOLD_`` as given (``None``: unset) for the processes started inside."""
    before = os.environ.pop(TRIM, None)
    if trim is not None:
        os.environ[TRIM] = trim
    try:
        yield
    finally:
        os.environ.pop(TRIM, None)
        if before is not None:
            os.environ[TRIM] = before


def measure(contract: str, cases: int, side_by_side: int, trim: str | None) -> list[float]:
    """CPU ms a case of each of ``side_by_side`` processes scoring ``cases`` cases at once."""
    context = multiprocessing.get_context("spawn")  # glibc reads the variable at start-up
    done = context.Queue()
    with environment(trim):
        workers = [
            context.Process(target=score, args=(contract, i * cases, (i + 1) * cases, done))
            for i in range(side_by_side)
        ]
        for worker in workers:
            worker.start()
    results = [done.get() * 1000 for _ in workers]
    for worker in workers:
        worker.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=2000, help="cases each process scores")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if os.environ.get(TRIM):
        parser.error(f"unset {TRIM} first: this benchmark sets it itself")

    folder = Path(tempfile.mkdtemp(prefix="impactgate-scoring-"))
    contract = str(build_project(folder, 2 * args.cases))
    load_before = os.getloadavg()[0]
    rows = []
    for label, trim in (("glibc's defaults", None), (f"{TRIM}={DASK_TRIM}", DASK_TRIM)):
        for side_by_side in (1, 2):
            runs = [
                ms
                for _ in range(args.repeats)
                for ms in measure(contract, args.cases, side_by_side, trim)
            ]
            way = "one alone" if side_by_side == 1 else "two side by side"
            line = (
                f"| {label} | {way} | **{statistics.median(runs):.2f}** | "
                f"{min(runs):.2f}–{max(runs):.2f} |"
            )
            print(line, flush=True)
            rows.append(line)
    load_after = os.getloadavg()[0]
    if args.write:
        from flows.evaluate import SCORING_BATCH

        day = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_section(
            "scoring_processes",
            f"""## Scoring in plain processes: side by side, and Dask's heap setting

Command: `.venv/bin/python benchmarks/scoring_processes.py --cases {args.cases} --repeats {args.repeats} --write`

Run {day}, commit `{code_commit()}`, {os.cpu_count()} cores; load average {load_before:.1f}
before and {load_after:.1f} after (1 minute). The fan-out benchmark's cases and scorers, scored
by `score_shard` in freshly spawned processes (no Prefect, no Dask), {args.cases} cases each
in batches of {SCORING_BATCH} (`flows.evaluate.SCORING_BATCH`), scorers warmed up first; CPU
of the scoring only, per case, over {args.repeats} repeats (each process of a side-by-side
pair counts as a run).

| heap setting | processes | CPU ms a case (median) | range |
|---|---|---|---|
"""
            + "\n".join(rows)
            + """

`MALLOC_TRIM_THRESHOLD_=65536` is what Dask's nannies give their workers; the local cluster
unsets it (`flows._runners.WORKER_CONFIG`, docs/deploy.md).
""",
        )


if __name__ == "__main__":
    main()
