"""Numbers, intervals and times the way the report shows them (plain text, escaped later)."""

from __future__ import annotations

from datetime import datetime

from evals.metrics import METRICS

__all__ = ["fmt_delta", "fmt_interval", "fmt_time", "fmt_value", "unit_of"]

_SCORER_UNITS = {spec.scorer: spec.unit for spec in METRICS.values() if spec.scorer}


def unit_of(name: str) -> str:
    """Unit of a metric or a scorer name (``share``, ``USD``, ``s``), ``share`` when unknown."""
    spec = METRICS.get(name)
    if spec is not None:
        return spec.unit
    return _SCORER_UNITS.get(name, "share")


def _number(value: float) -> str:
    if value == 0 or abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.3g}"


def fmt_value(name: str, value: float | None) -> str:
    """A value in its unit: ``0.420``, ``$0.000114``, ``1.420 s``; an em dash when missing."""
    if value is None:
        return "—"
    unit = unit_of(name)
    if unit == "USD":
        return f"${_number(value)}"
    if unit == "s":
        return f"{_number(value)} s"
    return _number(value)


def fmt_delta(name: str, delta: float) -> str:
    """A signed difference in the metric's unit: ``+0.320``, ``-$0.000011``, ``+0.120 s``."""
    return ("+" if delta >= 0 else "-") + fmt_value(name, abs(delta))


def fmt_interval(name: str, low: float | None, high: float | None) -> str:
    """``[0.294, 0.558]``; an open side shows as ``?`` or ``∞``; empty when there is none."""
    if low is None and high is None:
        return ""
    lower = fmt_value(name, low) if low is not None else "?"
    upper = fmt_value(name, high) if high is not None else "∞"
    return f"[{lower}, {upper}]"


def fmt_time(moment: datetime | None) -> str:
    """``2026-11-28 01:05 UTC``."""
    if moment is None:
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M UTC")
