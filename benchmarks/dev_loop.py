"""How long the development loop takes: the CLI's start, the fast test subset, the full suite.

    .venv/bin/python benchmarks/dev_loop.py [--write] [--repeat 3]

Times, in fresh processes from the repository root: `impactgate --version` and `--help`
(median of --repeat, after one warm-up run), the fast subset of the tests
(`pytest -m "not slow and not harness and not model and not server"`) --repeat times in each
of two settings, and the README's test command (`pytest`) once.

The subset's two settings differ only in Python's bytecode cache. With the cache (Python's
default: `PYTHONDONTWRITEBYTECODE` unset), after one warm-up run, as a developer re-runs it
while editing; only the modules edited since are compiled again. Without it
(`PYTHONDONTWRITEBYTECODE=1`, and the checkout's `__pycache__` folders removed first), as on
a fresh clone or a machine that sets the variable: every process compiles every module of the
project and pytest rewrites every test module's asserts again.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env=env or os.environ.copy()
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout[-2000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _remove_bytecode() -> None:
    """Remove the checkout's bytecode caches (the virtual environment's are left alone)."""
    for folder in ("evals", "flows", "examples", "tests", "benchmarks"):
        for cache in sorted((ROOT / folder).rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache)


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
    subset = [PYTHON, "-m", "pytest", "-q", "-m", FAST]
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    timed(subset, cached)  # warm-up: writes the bytecode cache
    fast = [timed(subset, cached) for _ in range(args.repeat)]
    _remove_bytecode()
    cold = [
        timed(subset, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}) for _ in range(args.repeat)
    ]
    for setting, goal, measured in (
        ("with the bytecode cache", "< 30 s", fast),
        ("no bytecode (fresh clone)", "", cold),
    ):
        rows.append(
            (
                f'`pytest -m "{FAST}"`, {setting}',
                goal,
                statistics.median(t for t, _ in measured),
                [t for t, _ in measured],
                measured[-1][1],
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
        "median of the repeats. The fast subset runs with Python's bytecode cache (the "
        "default; after a warm-up run) and without one (`PYTHONDONTWRITEBYTECODE=1` and no "
        "`__pycache__` in the checkout: every process compiles the project and rewrites the "
        "test modules, as on a fresh clone).",
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
