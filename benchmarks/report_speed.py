"""Speed of ``impactgate report`` on a year of nightly history: 365 runs × 3 agents.

The store is written the way the nightly flow writes it (tests/evals/test_report_history.py:
the example agents' contracts, datasets, recorded outputs and real policy, cost and latency
scorers through the evaluate flow's RunSession; real aggregation, gates, escalations,
rollbacks and ledger incidents), one run per agent per night, plus one CI
candidate-vs-baseline pair. Every run has 8 to 12 metrics (5 or 6 of them
gated at the current and the next level, which are the ones charted) and 50 samples per
scorer, so the store holds about 300,000 samples. Then it times:

1. ``build_report`` in this process (the engine: read, render, write), ``--repeat`` times;
2. the whole command, ``impactgate report``, in a fresh process (imports included) run by this
   interpreter on this checkout.

The goal is under 10 s for the report.

    .venv/bin/python benchmarks/report_speed.py                  # 365 nights, 3 repeats
    .venv/bin/python benchmarks/report_speed.py --write          # and record benchmarks/RESULTS.md
    .venv/bin/python benchmarks/report_speed.py --store /tmp/s   # keep (or reuse) the store
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

import pyarrow.dataset as ds  # noqa: E402
from results_file import write_section  # noqa: E402

from evals.report import build_report, load_agents  # noqa: E402
from evals.store import ResultsStore  # noqa: E402
from tests.evals.test_report_history import write_history  # noqa: E402

GOAL_S = 10.0


def _rows(folder: Path) -> int:
    # Row counts from the Parquet footers: nothing is read but metadata.
    return ds.dataset(folder, format="parquet").count_rows() if folder.exists() else 0


def _list(timings: list[float]) -> str:
    return ", ".join(f"{t:.2f} s" for t in timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", type=Path, help="Write the store here (reused if present).")
    parser.add_argument("--write", action="store_true", help="Record benchmarks/RESULTS.md.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="report-speed-"))
    results = args.store or tmp / "results"
    if not (results / "runs").exists():
        started = time.perf_counter()
        write_history(results, nights=args.nights, ci=True)
        print(f"wrote the store in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    store = ResultsStore(str(results))
    runs_rows, samples_rows = _rows(results / "runs"), _rows(results / "samples")
    n_runs = len(store.runs())
    n_decisions = len(store.decisions())

    timings, phases = [], []
    for _ in range(args.repeat):
        out = tmp / "site"
        started = time.perf_counter()
        report = build_report(results, out, policies=ROOT / "policies")
        timings.append(time.perf_counter() - started)
        # Where the time goes, measured apart: reading runs/decisions/ledger/contracts,
        # and reading the drill-down samples.
        t0 = time.perf_counter()
        agents, _ = load_agents(results, ROOT / "policies")
        t1 = time.perf_counter()
        store.samples([r for a in agents for r in a.runs[-10:]])
        t2 = time.perf_counter()
        phases.append((t1 - t0, t2 - t1))
    pages = len(report.pages)
    size_mb = sum(p.stat().st_size for p in report.pages) / 1e6
    charts = sum(p.read_text(encoding="utf-8").count('class="trend"') for p in report.pages)

    # The console script's entry point, by this interpreter, on this checkout.
    command = [sys.executable, "-c", "from flows.cli.main import main; main()", "report"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli_timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        subprocess.run(
            [*command, "--results", str(results), "--policies", str(ROOT / "policies"),
             "--out", str(tmp / "cli-site")],
            check=True, capture_output=True, cwd=ROOT, env=env,
        )  # fmt: skip
        cli_timings.append(time.perf_counter() - started)

    engine = statistics.median(timings)
    command = statistics.median(cli_timings)
    load = statistics.median(p[0] for p in phases)
    samples = statistics.median(p[1] for p in phases)
    verdict = "met" if max(engine, command) < GOAL_S else "**missed**"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    markdown = f"""## Report speed

Command: `.venv/bin/python benchmarks/report_speed.py --nights {args.nights} --repeat {args.repeat} --write`

Run {now} on {os.cpu_count()} cores (shared with other work), Python {platform.python_version()}.
Store: {args.nights} nights × 3 agents = {n_runs} runs (one CI candidate-vs-baseline pair
included), {runs_rows:,} `runs` rows (8–12 metrics a run), {samples_rows:,} samples,
{n_decisions} decisions, written the way the nightly flow writes them
(`tests/evals/test_report_history.py`).

| what | median | runs |
|---|---|---|
| `build_report` (read, render, write; in process) | {engine:.2f} s | {_list(timings)} |
| `impactgate report` (fresh process, imports included) | {command:.2f} s | {_list(cli_timings)} |
| of which: reading runs, decisions, ledger, contracts | {load:.2f} s | |
| of which: reading the samples of the 30 latest runs | {samples:.2f} s | |

The site: {pages} pages, {size_mb:.1f} MB, {charts} trend charts of {args.nights} points each.
**Goal: under {GOAL_S:.0f} s — {verdict}.** Samples are read only for the runs that get a page
(partition pruning on agent and date, then a filter on `run_id`), so the cost grows with the
pages written, not with the history kept.
"""
    print(markdown)
    if args.write:
        write_section("report_speed", markdown)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
