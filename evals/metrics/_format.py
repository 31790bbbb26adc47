"""How every surface writes a metric's number: one place, so a value never prints two ways.

Gate reasons, the CLI, the report, the run summary, the PR comment and JUnit all call these.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from evals.metrics._registry import METRICS

__all__ = ["fmt_delta", "fmt_interval", "fmt_time", "fmt_unit", "fmt_value", "unit_of"]

_SCORER_UNITS = {spec.scorer: spec.unit for spec in METRICS.values() if spec.scorer}


def unit_of(name: str) -> str:
    """Unit of a metric or a scorer name (``share``, ``USD``, ``s``), ``share`` when unknown."""
    spec = METRICS.get(name)
    if spec is not None:
        return spec.unit
    return _SCORER_UNITS.get(name, "share")


def _number(value: float) -> str:
    # Three decimals, or three significant digits for small numbers (costs per call), never
    # in e-notation: a reader compares $0.0000961 with $0.000114 at a glance.
    if value == 0 or abs(value) >= 0.01 or not math.isfinite(value):
        return f"{value:.3f}"
    digits = min(12, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def fmt_value(name: str, value: float | None) -> str:
    """A value in its unit: ``0.420``, ``$0.000114``, ``1.420 s``; an em dash when missing."""
    return fmt_unit(value, unit_of(name))


def fmt_unit(value: float | None, unit: str) -> str:
    """A value in a unit given by name; an em dash when missing.

    Metrics' units as :func:`fmt_value` writes them, an outcome's own unit after the number
    (``4.310 score (1-5)``).
    """
    if value is None:
        return "—"
    if unit in ("share", "progress", ""):
        return _number(value)
    if unit == "USD":
        return f"${_number(value)}" if value >= 0 else f"-${_number(-value)}"
    if unit == "s":
        return f"{_number(value)} s"
    return f"{_number(value)} {unit}"


def fmt_delta(name: str, delta: float | None) -> str:
    """A signed difference in the metric's unit: ``+0.320``, ``-$0.000011``, ``+0.120 s``."""
    if delta is None:
        return "—"
    return ("+" if delta >= 0 else "-") + fmt_value(name, abs(delta))


def fmt_interval(name: str, low: float | None, high: float | None, *, signed: bool = False) -> str:
    """``[0.294, 0.558]``; an open side shows as ``?`` or ``∞``; empty when there is none.

    With ``signed``, both ends are differences (``[-0.120, +0.020]``).
    """
    if low is None and high is None:
        return ""
    show = fmt_delta if signed else fmt_value
    lower = show(name, low) if low is not None else "?"
    upper = show(name, high) if high is not None else "∞"
    return f"[{lower}, {upper}]"


def fmt_time(moment: datetime | None) -> str:
    """``2026-11-28 01:05 UTC``; an em dash when missing."""
    if moment is None:
        return "—"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
