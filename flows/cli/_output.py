"""Shared output helpers: JSON on stdout, tables for people, numbers in their units."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from evals.metrics import METRICS

__all__ = ["console", "err_console", "fmt_value", "print_json"]

# Outside a terminal (CI logs, pipes) rich would wrap at 80 columns; a log line can be wider.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt_value(metric: str, value: float | None) -> str:
    """A metric value in its unit, or a dash."""
    if value is None:
        return "—"
    unit = METRICS[metric].unit if metric in METRICS else ""
    if unit == "USD":
        return f"${value:.5f}"
    if unit == "s":
        return f"{value:.3f}s"
    return f"{value:.3f}"
