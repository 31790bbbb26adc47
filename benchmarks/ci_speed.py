"""How long does the CI gate take when both sides are already stored, and to start at all?

    .venv/bin/python benchmarks/ci_speed.py [--write]

Copies the example project into a temporary git repository, runs `impactgate ci --agent
returns-concierge` once to store the baseline and candidate runs, then times the gate three
times over stored runs (wall time of the whole command, process start included), and the cold
start of the command (`impactgate --version`) three times.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import write_section  # noqa: E402

IMPACTGATE = Path(sys.executable).with_name("impactgate")


def _list(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        for name in ("policies", "datasets", "examples"):
            shutil.copytree(ROOT / name, repo / name)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.test"]
        subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "baseline"], cwd=repo, check=True)
        command = [
            str(IMPACTGATE),
            "ci",
            "--baseline",
            "HEAD",
            "--agent",
            "returns-concierge",
            "--results",
            str(Path(tmp) / "results"),
        ]
        first = timed(command, repo)
        cached = [timed(command, repo) for _ in range(3)]
        cold = [timed([str(IMPACTGATE), "--version"], repo) for _ in range(3)]
    table = "\n".join(
        [
            "## CI gate speed",
            "",
            "Command: `.venv/bin/python benchmarks/ci_speed.py --write`  ",
            f"Run: {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, 2 cores shared. Wall time of the whole command.",
            "",
            "| what | runs (s) | median (s) | target |",
            "|---|---|---|---|",
            f"| `impactgate ci` first run (evaluates both sides, 50 cases each) | {first:.2f} | "
            f"{first:.2f} | — |",
            f"| `impactgate ci` with both sides stored | {_list(cached)} | "
            f"**{statistics.median(cached):.2f}** | < 5 |",
            f"| cold start: `impactgate --version` | {_list(cold)} | {statistics.median(cold):.2f} | — |",
        ]
    )
    print(table)
    if args.write:
        write_section("ci_speed", table)


if __name__ == "__main__":
    main()
