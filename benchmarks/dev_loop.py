"""How long the development loop takes: the CLI's start, the fast test subset, the full suite.

    .venv/bin/python benchmarks/dev_loop.py [--write] [--repeat 3]

Times, in fresh processes from the repository root: `impactgate --version` and `--help`
(median of --repeat, after one warm-up run), the fast subset of the tests
(`pytest -m "not slow and not harness and not model and not server"`), and the README's test
command (`pytest`), each once per repeat for the subset and once for the full suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import code_commit, write_section  # noqa: E402

PYTHON = sys.executable
IMPACTGATE = str(Path(PYTHON).with_name("impactgate"))
FAST = "not slow and not harness and not model and not server"


def timed(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout[-2000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for label, command in (
        ("`impactgate --version`", [IMPACTGATE, "--version"]),
        ("`impactgate --help`", [IMPACTGATE, "--help"]),
    ):
        timed(command)  # warm: the files are in the page cache
        times = [timed(command)[0] for _ in range(args.repeat)]
        rows.append((label, "< 0.5 s", statistics.median(times), times, ""))
    fast = [timed([PYTHON, "-m", "pytest", "-q", "-m", FAST]) for _ in range(args.repeat)]
    rows.append(
        (
            f'`pytest -m "{FAST}"`',
            "< 30 s",
            statistics.median(t for t, _ in fast),
            [t for t, _ in fast],
            fast[-1][1],
        )
    )
    full_time, full_line = timed([PYTHON, "-m", "pytest", "-q"])
    rows.append(
        ("`pytest` (the README's test command)", "< 5 min", full_time, [full_time], full_line)
    )
    lines = [
        "## Development loop",
        "",
        f"Command: `.venv/bin/python benchmarks/dev_loop.py --repeat {args.repeat} --write` "
        f"({datetime.now(UTC):%Y-%m-%d}, commit {code_commit()}, {platform.machine()}, "
        f"{os.cpu_count()} cores). Wall time of fresh processes from the repository root; "
        "median of the repeats.",
        "",
        "| what | target | median | runs (s) | pytest says |",
        "|---|---|---|---|---|",
    ]
    for label, target, median, times, said in rows:
        runs = ", ".join(f"{t:.2f}" for t in times)
        lines.append(f"| {label} | {target} | **{median:.2f} s** | {runs} | {said} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section("dev_loop", text)


if __name__ == "__main__":
    main()
