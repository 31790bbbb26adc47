"""``python -m examples.telemetry --out DIR``: write the example agents' production telemetry."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from examples.telemetry import AGENTS, generate_all


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def main(argv: list[str] | None = None) -> int:
    """Write each agent's traces and work items into ``--out``; print the files."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.telemetry",
        description="Write the example agents' production telemetry: OTLP JSON traces "
        "(gzip, as the Collector's file exporter writes them) and a work-item CSV per agent.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--end",
        type=_day,
        default=None,
        help="export date; the history covers the days before it (default: today, UTC)",
    )
    parser.add_argument("--days", type=int, default=90, help="days of history (default 90)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--agents", nargs="+", choices=AGENTS, default=list(AGENTS), help="which agents"
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    args = parser.parse_args(argv)
    if args.days < 28:
        parser.error(f"--days {args.days}: the story needs at least 28 days")
    end = args.end or datetime.now(UTC).date()
    started = time.perf_counter()
    written = generate_all(
        args.out, end=end, days=args.days, seed=args.seed, agents=args.agents, workers=args.workers
    )
    for files in written.values():
        for path in files:
            print(path)
    print(f"{len(written)} agent(s) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
