"""Does a run's memory stay flat as its dataset grows? 10,000 and 100,000 cases, offline.

    .venv/bin/python benchmarks/streaming_memory.py [--cases 10000 100000] [--write]

For each size, a replay project of that many distinct cases is built (the account-support
agent's questions, passages and recorded answers; each case has a passage and a sentence of
its answer of its own, with its own ticket and customer numbers, so no two cases are judged
alike, and a quarter of the answers misstate a figure of their passages), with the outputs in
the dataset itself (a replay target without a side file) and the suites ``grounding``
(the offline judge), ``policy`` (the default rule pack), ``cost`` and ``latency``. Then
``impactgate run`` runs it in a fresh process, as a user would (the nightly flow, the Prefect
server, the thread runner, the store, the ledger), with a cache folder of its own (no sentence
vector of an earlier run is reused), and that process reports its peak resident set size
(``VmHWM``) when the command returns. The case throughput is the whole command's (start-up
included) over the number of cases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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

AGENT = "bench-stream"
TARGET_RATIO = 1.20


def build_project(folder: Path, n: int) -> Path:
    """A replay project of ``n`` distinct cases; returns its policies folder."""
    import yaml

    source = ROOT / "datasets" / "account-support"
    cases = [json.loads(line) for line in (source / "cases.jsonl").open(encoding="utf-8")]
    answers = {}
    for line in (source / "outputs.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        if row["version"] == "v1":
            answers[row["case_id"]] = row
    rng = random.Random(n)
    (folder / "policies" / "rules").mkdir(parents=True)
    pack = (ROOT / "policies" / "rules" / "default.yaml").read_text(encoding="utf-8")
    (folder / "policies" / "rules" / "default.yaml").write_text(pack, encoding="utf-8")
    (folder / "datasets").mkdir()
    with (folder / "datasets" / "cases.jsonl").open("w", encoding="utf-8") as out:
        for i in range(n):
            case = dict(cases[i % len(cases)])
            answer = answers[case["id"]]
            minutes = str(rng.randint(2, 59))
            wrong = str(int(minutes) + 1) if i % 4 == 0 else minutes  # a quarter not grounded
            ticket = f"This is ticket {100_000 + i} of customer {rng.randint(10**6, 10**7)}."
            out.write(
                json.dumps(
                    {
                        "id": f"case-{i:06d}",
                        "input": f"{case['input']} (ticket {100_000 + i})",
                        "contexts": [ticket, *(p.replace("30", minutes) for p in case["contexts"])],
                        "tags": case.get("tags", []),
                        "output": f"{answer['output'].replace('30', wrong)} {ticket}",
                        "latency_s": round(answer["latency_s"] * rng.uniform(0.7, 1.4), 3),
                        "usage": answer["usage"],
                        "model": answer["model"],
                    }
                )
                + "\n"
            )
    from tests.helpers import CONTRACT

    contract = json.loads(json.dumps(CONTRACT))
    contract["agent"] = AGENT
    contract["evals"]["dataset"] = "datasets/cases.jsonl"
    contract["evals"]["target"] = {"kind": "replay", "version": "v1"}
    contract["evals"]["suites"] = ["grounding", "policy", "cost", "latency"]
    contract["evals"]["policy"] = {"rule_packs": ["policies/rules/default.yaml"]}
    contract["autonomy"]["min_samples"] = 40
    path = folder / "policies" / f"{AGENT}.yaml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return folder / "policies"


def child(policies: str, results: str) -> None:
    """Run ``impactgate run`` in this process and print its peak RSS and the run summary."""
    from click.testing import CliRunner

    from flows.cli.main import cli

    started = time.perf_counter()
    outcome = CliRunner().invoke(
        cli,
        ["run", AGENT, "--policies", policies, "--results", results, "--no-cache", "--json"],
        catch_exceptions=False,
    )
    seconds = time.perf_counter() - started
    peak_kb = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    [summary] = json.loads(outcome.stdout)["runs"]
    print(
        json.dumps(
            {
                "exit": outcome.exit_code,
                "seconds": seconds,
                "peak_mb": peak_kb / 1024,
                "n_cases": summary["cases"],
                "verdict": summary["verdict"],
            }
        )
    )


def measure(n: int) -> dict[str, float]:
    """Build an ``n``-case project and run it in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="impactgate-stream-") as tmp:
        folder = Path(tmp)
        policies = build_project(folder, n)
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(policies), str(folder / "results")],
            cwd=folder,
            # A cache of its own: no sentence vector from an earlier measurement is reused.
            env={**os.environ, "IMPACTGATE_CACHE_DIR": str(folder / "cache")},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"the run of {n:,} cases failed:\n{done.stderr[-4000:]}")
        measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{n:>7,} cases: {json.dumps(measured)}", flush=True)
        return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    parser.add_argument("--child", nargs=2, metavar=("POLICIES", "RESULTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    started = datetime.now(UTC)
    rows = {n: measure(n) for n in args.cases}
    smallest, largest = min(rows), max(rows)
    ratio = rows[largest]["peak_mb"] / rows[smallest]["peak_mb"]
    print(f"peak RSS {largest:,} / {smallest:,} cases: {ratio:.3f} (target < {TARGET_RATIO})")
    if not args.write:
        return
    lines = [
        "## Streaming runs: memory against dataset size",
        "",
        "Command: `.venv/bin/python benchmarks/streaming_memory.py --cases "
        + " ".join(str(n) for n in args.cases)
        + " --write`  ",
        f"Run: {started:%Y-%m-%d %H:%M} UTC, commit {code_commit()}, {platform.machine()}, "
        f"2 cores, Python {platform.python_version()}. `impactgate run` in a fresh process over "
        "a replay project of distinct cases (outputs in the dataset), suites grounding "
        "(offline judge), policy (default.yaml), cost and latency; the thread runner; peak "
        "RSS is that process's `VmHWM` when the command returns.",
        "",
        "| cases | verdict | seconds | cases/s | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for n, row in rows.items():
        lines.append(
            f"| {n:,} | {row['verdict']} | {row['seconds']:,.0f} | {n / row['seconds']:.1f} "
            f"| {row['peak_mb']:,.0f} MB |"
        )
    lines += [
        "",
        f"Peak RSS at {largest:,} cases is **{ratio:.2f}×** that at {smallest:,} "
        f"(target < {TARGET_RATIO:.2f}×).",
    ]
    write_section("streaming_memory", "\n".join(lines))


if __name__ == "__main__":
    main()
