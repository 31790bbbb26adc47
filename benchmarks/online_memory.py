"""Does sampling and case building stay flat in memory as the window grows?

    .venv/bin/python benchmarks/online_memory.py [--write]

100,000 traces of one agent (``benchmarks/online_evals.py``'s data) are ingested once; then,
in a fresh process each, ``trace_summaries`` + ``draw_sample`` (n = 200) + ``build_cases``
run over windows holding 12,500 to 100,000 of them, and the peak resident set size is read.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from online_evals import project, write_traces  # noqa: E402
from results_file import code_commit, write_section  # noqa: E402

PROBE = """
import resource, sys, time
from datetime import UTC, datetime
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from evals._env import apply_offline_defaults
apply_offline_defaults()
from telemetry_data import T0
from evals.online import build_cases, draw_sample, trace_summaries
from evals.store import ResultsStore
store, n = ResultsStore(sys.argv[1]), int(sys.argv[2])
since = datetime.fromtimestamp(T0 / 1e9, UTC)
until = datetime.fromtimestamp(T0 / 1e9 + n * 2, UTC)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
traces, _ = trace_summaries(store, "billing-assistant", since, until)
built = build_cases(store, draw_sample(traces, 200, ["route", "tool_path", "outcome"], "0").traces)
print(len(traces), before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      time.perf_counter() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record benchmarks/RESULTS.md")
    args = parser.parse_args()
    from evals.telemetry import TelemetryMasker, ingest

    work = Path(tempfile.mkdtemp(prefix="ig-online-memory-"))
    write_traces(work / "traces.jsonl", 100_000)
    project(work, 200)
    report = ingest(
        [work / "traces.jsonl"],
        work / "results",
        masking=TelemetryMasker(work / "policies"),
        workers=2,
    )
    assert report.ok, report.to_dict()
    probe = PROBE.format(root=str(ROOT), bench=str(Path(__file__).parent))
    rows = []
    for n in (12_500, 25_000, 50_000, 100_000):
        out = subprocess.run(
            [sys.executable, "-c", probe, str(work / "results"), str(n)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        traces, before, peak, seconds = out.stdout.strip().splitlines()[-1].split()
        rows.append((int(traces), int(before) / 1024, int(peak) / 1024, float(seconds)))
    lines = [
        "## Online evals: memory in the window (`benchmarks/online_memory.py`)",
        "",
        f"Commit `{code_commit()}`, 2 shared cores. A fresh process per window; DuckDB's memory "
        "for the window query is capped (`evals.online.QUERY_MEMORY`), so it spills instead of "
        "growing; what still grows is one summary a trace in Python.",
        "",
        "| traces in the window | peak RSS before | peak RSS after sampling and case building | seconds |",
        "|---|---|---|---|",
        *(f"| {t:,} | {b:.0f} MB | {p:.0f} MB | {s:.2f} |" for t, b, p, s in rows),
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("online_memory", text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
