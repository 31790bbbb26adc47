"""How fast does ``impactgate ingest`` store OTLP JSON, and does its memory stay flat?

    .venv/bin/python benchmarks/telemetry_ingest.py [--spans 500000] [--write]

Throughput: one Collector-format file (``benchmarks/telemetry_data.py``: the example agents'
five-span traces with GenAI attributes, ~1 KB of JSON a span, 100 traces a line) goes through
``evals.telemetry.ingest`` as the CLI calls it: hashed, decoded, mapped, masked with each
agent's contract (``policies/``), written as Parquet and committed. Configurations: questions
drawn from 1,000 distinct ones (each distinct text is masked once), in one process and with
two worker processes; every question and answer unique (the worst case for masking); and the
same with masking off (``store_outputs: raw``), to show what masking costs. Then the cost of
the deduplicated DuckDB view over what was stored.

Memory: N files of 20,000 spans ingested one after another by one call, in a fresh process
each time; the peak resident set size is reported for each N.
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(Path(__file__).parent))

from results_file import code_commit, write_section  # noqa: E402
from telemetry_data import write_file  # noqa: E402

# The engine is imported inside the functions: worker processes are spawned and import this
# script again as their main module, and the CLI's main module imports no engine either.

TARGET = 50_000


def raw_policies(folder: Path) -> Path:
    """A copy of ``policies/`` whose contracts keep span content as sent (masking off).

    ``folder`` must be named ``policies``: a contract's rule packs are read from
    ``policies/rules/`` beside it.
    """
    shutil.copytree(ROOT / "policies", folder)
    for contract in folder.glob("*.yaml"):
        text = contract.read_text(encoding="utf-8")
        contract.write_text(
            text.replace("\nevals:\n", "\nevals:\n  store_outputs: raw\n", 1), encoding="utf-8"
        )
    return folder


def timed_ingest(
    path: Path, policies: Path, workers: int, repeat: int
) -> tuple[float, int, list[float], Path]:
    """Median seconds, spans stored, every run's seconds, and the last run's results root."""
    from evals.telemetry import TelemetryMasker, ingest

    runs: list[float] = []
    records = 0
    results = Path()
    for _ in range(repeat):
        if results.name:
            shutil.rmtree(results)
        results = Path(tempfile.mkdtemp(prefix="ig-ingest-"))
        masking = TelemetryMasker(policies)
        start = time.perf_counter()
        report = ingest([path], results, masking=masking, workers=workers)
        runs.append(time.perf_counter() - start)
        records = report.files[0].records
        assert report.ok, report.to_dict()
        assert not report.warnings, report.warnings  # every agent masked by its own contract
    return statistics.median(runs), records, runs, results


def view_seconds(results: Path) -> tuple[float, int]:
    from evals.store import connect_telemetry

    start = time.perf_counter()
    with connect_telemetry(results) as db:
        (count,) = db.sql("SELECT count(*) FROM spans").fetchall()[0]
    return time.perf_counter() - start, int(count)


MEMORY_PROBE = """
import resource, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from evals.telemetry import TelemetryMasker, ingest
paths = [Path(p) for p in sys.argv[2:]]
report = ingest(paths, sys.argv[1], masking=TelemetryMasker({policies!r}))
assert report.ok
print(sum(f.records for f in report.files), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(files: list[Path], counts: list[int]) -> list[tuple[int, int, float]]:
    probe = MEMORY_PROBE.format(root=str(ROOT), policies=str(ROOT / "policies"))
    rows = []
    for n in counts:
        results = tempfile.mkdtemp(prefix="ig-memory-")
        out = subprocess.run(
            [sys.executable, "-c", probe, results, *map(str, files[:n])],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        spans, kilobytes = map(int, out.stdout.split())
        rows.append((n, spans, kilobytes / 1024))
        shutil.rmtree(results)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-files", type=int, nargs="+", default=[1, 10, 40])
    parser.add_argument("--write", action="store_true", help="record benchmarks/RESULTS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ig-telemetry-bench-"))
    traces = args.spans // 5
    pooled, unique = work / "pooled.jsonl", work / "unique.jsonl"
    write_file(pooled, traces, distinct_questions=1000)
    write_file(unique, traces, distinct_questions=None)
    raw = raw_policies(
        work / "raw" / "policies"
    )  # contracts resolve packs from the folder's parent
    masked = ROOT / "policies"
    size_mb = pooled.stat().st_size / 1e6
    print(f"{args.spans:,} spans, {size_mb:.0f} MB of OTLP JSON each", flush=True)

    uncontracted = work / "bare" / "policies"  # the rule packs, no contract: the default packs
    shutil.copytree(ROOT / "policies" / "rules", uncontracted / "rules")
    small = work / "small.jsonl"
    write_file(small, 2_000, distinct_questions=1000)
    configs = [
        ("questions from 1,000 distinct, masked, 1 process", pooled, masked, 1),
        ("questions from 1,000 distinct, masked, 2 worker processes", pooled, masked, 2),
        ("every question and answer unique, masked, 1 process", unique, masked, 1),
        (
            "every question and answer unique, masking off (`store_outputs: raw`), 1 process",
            unique,
            raw,
            1,
        ),
        (
            "no contract: default.yaml + pii.yaml with the NER model, 10,000 spans, 1 process",
            small,
            uncontracted,
            1,
        ),
    ]
    rows = []
    view = None
    for label, path, policies, workers in configs:
        seconds, records, runs, results = timed_ingest(path, policies, workers, args.repeat)
        rate = records / seconds
        rows.append((label, records, seconds, runs, rate))
        print(f"{label}: {records:,} spans in {seconds:.2f} s = {rate:,.0f} spans/s", flush=True)
        if view is None:
            view = view_seconds(results)
            print(f"DuckDB view over {view[1]:,} spans: {view[0]:.2f} s", flush=True)
        shutil.rmtree(results)

    files = []
    for i in range(max(args.memory_files)):
        path = work / f"memory-{i:03d}.jsonl"
        write_file(path, 4_000, distinct_questions=1000, first=i * 4_000)
        files.append(path)
    mem = memory(files, args.memory_files)
    for n, spans, mb in mem:
        print(f"{n} file(s), {spans:,} spans: peak RSS {mb:.0f} MB", flush=True)
    shutil.rmtree(work)

    if args.write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            "## Telemetry ingest",
            "",
            f"Command: `.venv/bin/python benchmarks/telemetry_ingest.py --spans {args.spans} --write`  ",
            f"Run: {when}, commit {code_commit()}, {platform.machine()}, 2 cores, Python "
            f"{platform.python_version()}. One Collector-format file of {args.spans:,} spans "
            f"({size_mb:.0f} MB: the example agents' five-span traces with GenAI attributes, 100 "
            "traces a line) through `evals.telemetry.ingest` as the CLI calls it (hash, decode, map, "
            f"mask with the agent's contract, Parquet, commit); median of {args.repeat} runs.",
            "",
            "| configuration | spans | seconds | spans/s | target |",
            "|---|---|---|---|---|",
        ]
        for label, records, seconds, runs, rate in rows:
            spread = ", ".join(f"{r:.2f}" for r in runs)
            lines.append(
                f"| {label} | {records:,} | {seconds:.2f} ({spread}) | **{rate:,.0f}** | ≥ {TARGET:,} |"
            )
        assert view is not None
        lines += [
            "",
            f"`SELECT count(*) FROM spans` through the deduplicated DuckDB view "
            f"(`connect_telemetry`) over the {view[1]:,} spans stored: {view[0]:.2f} s.",
            "",
            "Memory, N files of 20,000 spans ingested one after another by one call (one process), "
            "peak resident set size:",
            "",
            "| files | spans | peak RSS |",
            "|---|---|---|",
            *[f"| {n} | {spans:,} | {mb:.0f} MB |" for n, spans, mb in mem],
        ]
        write_section("telemetry_ingest", "\n".join(lines))
        print(json.dumps({"written": "benchmarks/RESULTS.md"}))


if __name__ == "__main__":
    main()
