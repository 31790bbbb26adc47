"""Trend charts as inline SVG: the geometry is computed here, ``chart.html.j2`` draws it.

One chart per gated metric: the value of each run with its interval as a band, the threshold
lines of the current and the next level, dotted lines where the version changed, and the
decisions (escalations, rollbacks, promotions) as markers on the time axis below. Every mark
carries a ``<title>``, which browsers show as a tooltip; points link to their run's page.

No chart library, no script, no network: a :class:`TrendChart` is plain data (coordinates as
strings, titles as plain text), and the template escapes every text in it like any other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from evals.metrics import fmt_value, unit_of

__all__ = [
    "Band",
    "EventMark",
    "Label",
    "Mark",
    "Segment",
    "ThresholdLine",
    "TrendChart",
    "TrendPoint",
    "VersionMark",
    "trend_chart",
]

WIDTH, HEIGHT = 760, 236
LEFT, RIGHT, TOP, BOTTOM = 64, 616, 24, 176
"""Plot area; the threshold labels go right of it, the time axis and event lane below."""
EVENT_Y = 214


# --- what the caller gives ------------------------------------------------------------------


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


# --- what the template draws ------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A ``<line>``; ``title`` becomes its tooltip."""

    x1: str
    y1: str
    x2: str
    y2: str
    cls: str
    title: str = ""


@dataclass(frozen=True)
class Label:
    """A ``<text>``."""

    x: str
    y: str
    text: str
    cls: str
    anchor: str = "start"


@dataclass(frozen=True)
class Mark:
    """A run's point (a ``<circle>``) or a ``<path>`` when ``d`` is set, with its tooltip."""

    cls: str
    title: str
    href: str | None = None
    d: str = ""
    cx: str = ""
    cy: str = ""
    r: str = ""


@dataclass(frozen=True)
class Band:
    """The interval band: a ``<path>`` through the runs, or a ``<rect>`` for a single run."""

    d: str = ""
    x: str = ""
    y: str = ""
    width: str = ""
    height: str = ""


@dataclass(frozen=True)
class TrendChart:
    """One metric over time, ready to draw."""

    metric: str
    title: str
    points: list[Mark]
    """One per run, oldest first: a circle coloured by its verdict, a cross when not measured."""
    width: int = WIDTH
    height: int = HEIGHT
    axes: list[Segment] = field(default_factory=list)
    """Grid lines, the time axis and its ticks."""
    band: Band | None = None
    line: str = ""
    """The value line's path; empty when no run measured the metric."""
    thresholds: list[Segment] = field(default_factory=list)
    versions: list[Segment] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    events: list[Mark] = field(default_factory=list)


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
) -> TrendChart | None:
    """One metric over time, laid out; ``None`` when there is no run to draw."""
    points = sorted(points, key=lambda p: p.at)
    if not points:
        return None
    start = points[0].at.timestamp()
    shown_events = [e for e in events if e.at.timestamp() >= start]
    end = max([points[-1].at.timestamp(), *(e.at.timestamp() for e in shown_events)])

    def x_at(moment: float) -> float:
        if end <= start:
            return (LEFT + RIGHT) / 2
        return LEFT + (moment - start) / (end - start) * (RIGHT - LEFT)

    def x_of(moment: datetime) -> float:
        return x_at(moment.timestamp())

    numbers = [
        v for p in points for v in (p.value, p.low, p.high) if v is not None and math.isfinite(v)
    ] + [t.bound for t in thresholds]
    if not numbers:
        numbers = [0.0, 1.0]
    y_low, y_high, step = _y_domain(metric, numbers)

    def y_of(value: float) -> float:
        clipped = min(max(value, y_low), y_high)
        return BOTTOM - (clipped - y_low) / (y_high - y_low) * (BOTTOM - TOP)

    axes: list[Segment] = []
    labels: list[Label] = []
    # Grid and y axis.
    for i in range(round((y_high - y_low) / step) + 1):
        tick = y_low + i * step
        grid_y = _f(y_of(tick))
        axes.append(Segment(str(LEFT), grid_y, str(RIGHT), grid_y, "grid"))
        labels.append(
            Label(str(LEFT - 6), _f(y_of(tick) + 4), fmt_value(metric, tick), "tick", "end")
        )
    axes.append(Segment(str(LEFT), str(BOTTOM), str(RIGHT), str(BOTTOM), "axis"))
    for at, text in _time_labels(start, end):
        tick_x = _f(x_at(at))
        axes.append(Segment(tick_x, str(BOTTOM), tick_x, str(BOTTOM + 4), "axis"))
        labels.append(Label(tick_x, str(BOTTOM + 17), text, "tick", "middle"))

    # The interval band (an open side reaches the edge of the plot) and the value line.
    band = None
    measured = [p for p in points if p.value is not None]
    if len(measured) > 1:
        upper = [(x_of(p.at), y_of(p.high if p.high is not None else y_high)) for p in measured]
        lower = [(x_of(p.at), y_of(p.low if p.low is not None else y_low)) for p in measured]
        outline = upper + lower[::-1]
        band = Band(d="M" + " L".join(f"{_f(x)},{_f(y)}" for x, y in outline) + " Z")
    elif measured:
        p = measured[0]
        x = x_of(p.at)
        y1 = y_of(p.high if p.high is not None else y_high)
        y2 = y_of(p.low if p.low is not None else y_low)
        band = Band(x=_f(x - 5), y=_f(y1), width="10", height=_f(max(y2 - y1, 1)))
    segments: list[str] = []
    pen_down = False
    for p in points:
        if p.value is None:
            pen_down = False
            continue
        segments.append(f"{'L' if pen_down else 'M'}{_f(x_of(p.at))},{_f(y_of(p.value))}")
        pen_down = True

    # Threshold lines, labels kept apart so they stay readable.
    lines: list[Segment] = []
    placed: list[float] = []
    for threshold in sorted(thresholds, key=lambda t: y_of(t.bound)):
        y = y_of(threshold.bound)
        lines.append(Segment(str(LEFT), _f(y), str(RIGHT), _f(y), f"thr {threshold.kind}"))
        label_y = max(y + 4, (placed[-1] + 13) if placed else -math.inf)
        placed.append(label_y)
        labels.append(
            Label(str(RIGHT + 6), _f(label_y), threshold.label, f"thr-label {threshold.kind}")
        )

    # Versions: the first one named at the start, each change as a dotted line, labelled where
    # there is room (a year of weekly deployments would not fit).
    labels.append(Label(str(LEFT), str(TOP - 9), points[0].version, "ver-label"))
    changes: list[Segment] = []
    last_label: float = LEFT + 6 * len(points[0].version)
    for version in versions:
        if version.at.timestamp() < start:
            continue
        x = x_of(version.at)
        changes.append(
            Segment(_f(x), str(TOP - 6), _f(x), str(BOTTOM), "ver",
                    f"version {version.label} from here")
        )  # fmt: skip
        if x - last_label >= 40:
            labels.append(Label(_f(x), str(TOP - 9), version.label, "ver-label", "middle"))
            last_label = x + 3 * len(version.label)

    # Points: one per run, coloured by the verdict of that run's own gate.
    radius = "3.5" if len(points) <= 60 else "2.2"
    marks = []
    for p in points:
        x = x_of(p.at)
        if p.value is None:
            marks.append(
                Mark("pt nodata", p.title, p.href, d=_event_path("rollback_refused", x, BOTTOM - 6))
            )
        else:
            marks.append(
                Mark(f"pt {p.verdict or 'ungated'}", p.title, p.href,
                     cx=_f(x), cy=_f(y_of(p.value)), r=radius)
            )  # fmt: skip

    # Decisions on the time axis; a nightly escalation for months would merge into a bar, so
    # the marks get smaller when crowded.
    labels.append(Label(str(LEFT - 6), str(EVENT_Y + 4), "events", "tick", "end"))
    size = 6.0 if len(shown_events) <= 40 else 3.5
    event_marks = [
        Mark(f"ev {e.kind}", e.title, e.href, d=_event_path(e.kind, x_of(e.at), EVENT_Y, size))
        for e in shown_events
    ]
    return TrendChart(
        metric=metric,
        title=title,
        points=marks,
        axes=axes,
        band=band,
        line=" ".join(segments),
        thresholds=lines,
        versions=changes,
        labels=labels,
        events=event_marks,
    )
