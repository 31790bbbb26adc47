"""Trend charts as inline SVG, drawn in Python: no chart library, no script, no network.

One chart per gated metric: the value of each run with its interval as a band, the threshold
lines of the current and the next level, dotted lines where the version changed, and the
decisions (escalations, rollbacks, promotions) as markers on the time axis below. Every mark
carries a ``<title>``, which browsers show as a tooltip; points link to their run's page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from evals.metrics import fmt_value, unit_of
from evals.report._html import Html, el, join

__all__ = ["EventMark", "ThresholdLine", "TrendPoint", "VersionMark", "trend_chart"]

WIDTH, HEIGHT = 760, 236
LEFT, RIGHT, TOP, BOTTOM = 64, 616, 24, 176
"""Plot area; the threshold labels go right of it, the time axis and event lane below."""
EVENT_Y = 214


@dataclass(frozen=True)
class TrendPoint:
    """One run on the chart."""

    at: datetime
    value: float | None
    low: float | None
    high: float | None
    verdict: str | None
    """The run's own verdict on this metric; ``None`` when it was not gated."""
    title: str
    version: str = ""
    href: str | None = None


@dataclass(frozen=True)
class ThresholdLine:
    """A level's bound for the metric."""

    label: str
    bound: float
    kind: str
    """``current`` or ``next``."""


@dataclass(frozen=True)
class VersionMark:
    """The first run of a new version."""

    at: datetime
    label: str


@dataclass(frozen=True)
class EventMark:
    """A decision on the time axis."""

    at: datetime
    kind: str
    title: str
    href: str | None = None


def _nice_step(span: float) -> float:
    raw = span / 4
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _y_domain(metric: str, numbers: Sequence[float]) -> tuple[float, float, float]:
    low, high = min(numbers), max(numbers)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 0.05
        low, high = low - pad, high + pad
    step = _nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    if min(numbers) >= 0:
        low = max(low, 0.0)  # no negative axis for values that cannot be negative
    if unit_of(metric) == "share" and max(numbers) <= 1:
        high = min(high, 1.0)
    if high <= low:
        high = low + step
    return low, high, step


def _f(value: float) -> str:
    return f"{value:.1f}"


def _time_labels(start: float, end: float) -> list[tuple[float, str]]:
    span = end - start
    if span <= 0:
        return [(start, datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M"))]
    if span < 3600:
        pattern = "%H:%M:%S"
    elif span < 3 * 86400:
        pattern = "%m-%d %H:%M"
    else:
        pattern = "%Y-%m-%d"
    labels: list[tuple[float, str]] = []
    for at in (start + span * i / 4 for i in range(5)):
        text = datetime.fromtimestamp(at, UTC).strftime(pattern)
        if not labels or labels[-1][1] != text:
            labels.append((at, text))
    return labels


_EVENT_SHAPES = {
    "escalate": "M{x},{y1} L{x2},{y2} L{x0},{y2} Z",  # triangle up
    "promote": "M{x},{y1} L{x2},{y2} L{x0},{y2} Z",
    "approve": "M{x},{y1} L{x2},{y2} L{x0},{y2} Z",
    "demote": "M{x0},{y1} L{x2},{y1} L{x},{y2} Z",  # triangle down
    "rollback": "M{x},{y1} L{x2},{y} L{x},{y2} L{x0},{y} Z",  # diamond
    "rollback_refused": "M{x0},{y1} L{x2},{y2} M{x2},{y1} L{x0},{y2}",  # cross
    "promotion_failed": "M{x0},{y1} L{x2},{y2} M{x2},{y1} L{x0},{y2}",
    "promotion_rejected": "M{x0},{y1} L{x2},{y2} M{x2},{y1} L{x0},{y2}",
}


def _event_path(kind: str, x: float, y: float, r: float = 6.0) -> str:
    shape = _EVENT_SHAPES.get(kind, "M{x0},{y} A{r},{r} 0 1,0 {x2},{y} A{r},{r} 0 1,0 {x0},{y} Z")
    return shape.format(
        x=_f(x), y=_f(y), r=_f(r), x0=_f(x - r), x2=_f(x + r), y1=_f(y - r), y2=_f(y + r)
    )


def trend_chart(
    metric: str,
    points: Sequence[TrendPoint],
    thresholds: Sequence[ThresholdLine],
    versions: Sequence[VersionMark],
    events: Sequence[EventMark],
    title: str,
) -> Html:
    """One metric over time as an ``<svg>`` element (empty-state text when nothing to draw)."""
    points = sorted(points, key=lambda p: p.at)
    if not points:
        return el("p", f"{metric}: no runs measured it yet.", cls="empty")
    start = points[0].at.timestamp()
    shown_events = [e for e in events if e.at.timestamp() >= start]
    end = max([points[-1].at.timestamp(), *(e.at.timestamp() for e in shown_events)])

    def x_of(moment: datetime) -> float:
        if end <= start:
            return (LEFT + RIGHT) / 2
        return LEFT + (moment.timestamp() - start) / (end - start) * (RIGHT - LEFT)

    numbers = [
        v for p in points for v in (p.value, p.low, p.high) if v is not None and math.isfinite(v)
    ] + [t.bound for t in thresholds]
    if not numbers:
        numbers = [0.0, 1.0]
    y_low, y_high, step = _y_domain(metric, numbers)

    def y_of(value: float) -> float:
        clipped = min(max(value, y_low), y_high)
        return BOTTOM - (clipped - y_low) / (y_high - y_low) * (BOTTOM - TOP)

    parts: list[Html] = [el("title", title)]
    # Grid and y axis.
    for i in range(round((y_high - y_low) / step) + 1):
        tick = y_low + i * step
        y = y_of(tick)
        parts.append(el("line", x1=LEFT, x2=RIGHT, y1=_f(y), y2=_f(y), cls="grid"))
        parts.append(
            el(
                "text",
                fmt_value(metric, tick),
                x=LEFT - 6,
                y=_f(y + 4),
                cls="tick",
                text_anchor="end",
            )
        )
    parts.append(el("line", x1=LEFT, x2=RIGHT, y1=BOTTOM, y2=BOTTOM, cls="axis"))
    for at, label in _time_labels(start, end):
        x = (
            LEFT + (at - start) / (end - start) * (RIGHT - LEFT)
            if end > start
            else (LEFT + RIGHT) / 2
        )
        parts.append(el("line", x1=_f(x), x2=_f(x), y1=BOTTOM, y2=BOTTOM + 4, cls="axis"))
        parts.append(el("text", label, x=_f(x), y=BOTTOM + 17, cls="tick", text_anchor="middle"))

    # The interval band (an open side reaches the edge of the plot) and the value line.
    measured = [p for p in points if p.value is not None]
    if len(measured) > 1:
        upper = [(x_of(p.at), y_of(p.high if p.high is not None else y_high)) for p in measured]
        lower = [(x_of(p.at), y_of(p.low if p.low is not None else y_low)) for p in measured]
        outline = upper + lower[::-1]
        d = "M" + " L".join(f"{_f(x)},{_f(y)}" for x, y in outline) + " Z"
        parts.append(el("path", d=d, cls="band"))
    elif measured:
        p = measured[0]
        x = x_of(p.at)
        y1 = y_of(p.high if p.high is not None else y_high)
        y2 = y_of(p.low if p.low is not None else y_low)
        parts.append(
            el("rect", x=_f(x - 5), y=_f(y1), width=10, height=_f(max(y2 - y1, 1)), cls="band")
        )
    segments: list[str] = []
    pen_down = False
    for p in points:
        if p.value is None:
            pen_down = False
            continue
        segments.append(f"{'L' if pen_down else 'M'}{_f(x_of(p.at))},{_f(y_of(p.value))}")
        pen_down = True
    if segments:
        parts.append(el("path", d=" ".join(segments), cls="line"))

    # Threshold lines, labels kept apart so they stay readable.
    placed: list[float] = []
    for line in sorted(thresholds, key=lambda t: y_of(t.bound)):
        y = y_of(line.bound)
        parts.append(el("line", x1=LEFT, x2=RIGHT, y1=_f(y), y2=_f(y), cls=f"thr {line.kind}"))
        label_y = max(y + 4, (placed[-1] + 13) if placed else -math.inf)
        placed.append(label_y)
        parts.append(
            el("text", line.label, x=RIGHT + 6, y=_f(label_y), cls=f"thr-label {line.kind}")
        )

    # Versions: the first one named at the start, each change as a dotted line, labelled where
    # there is room (a year of weekly deployments would not fit).
    parts.append(
        el("text", points[0].version, x=LEFT, y=TOP - 9, cls="ver-label", text_anchor="start")
    )
    last_label: float = LEFT + 6 * len(points[0].version)
    for version in versions:
        if version.at.timestamp() < start:
            continue
        x = x_of(version.at)
        parts.append(
            el("line", el("title", f"version {version.label} from here"), x1=_f(x), x2=_f(x),
               y1=TOP - 6, y2=BOTTOM, cls="ver")
        )  # fmt: skip
        if x - last_label >= 40:
            parts.append(
                el("text", version.label, x=_f(x), y=TOP - 9, cls="ver-label", text_anchor="middle")
            )
            last_label = x + 3 * len(version.label)

    # Points: one per run, coloured by the verdict of that run's own gate.
    radius = 3.5 if len(points) <= 60 else 2.2
    for p in points:
        x = x_of(p.at)
        if p.value is None:
            mark = el("path", el("title", p.title), d=_event_path("rollback_refused", x, BOTTOM - 6),
                      cls="pt nodata")  # fmt: skip
        else:
            mark = el(
                "circle", el("title", p.title), cx=_f(x), cy=_f(y_of(p.value)), r=radius,
                cls=f"pt {p.verdict or 'ungated'}",
            )  # fmt: skip
        parts.append(el("a", mark, href=p.href) if p.href else mark)

    # Decisions on the time axis.
    parts.append(el("text", "events", x=LEFT - 6, y=EVENT_Y + 4, cls="tick", text_anchor="end"))
    # A nightly escalation for months would merge into a bar: smaller marks when crowded.
    size = 6.0 if len(shown_events) <= 40 else 3.5
    for event in shown_events:
        mark = el(
            "path", el("title", event.title), d=_event_path(event.kind, x_of(event.at), EVENT_Y, size),
            cls=f"ev {event.kind}",
        )  # fmt: skip
        parts.append(el("a", mark, href=event.href) if event.href else mark)

    return el(
        "svg",
        join(parts),
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {WIDTH} {HEIGHT}",
        width=WIDTH,
        height=HEIGHT,
        role="img",
        cls="trend",
        data_metric=metric,
        data_points=len(points),
    )
