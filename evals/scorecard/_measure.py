"""The scorecard: every block of the contract measured from production telemetry.

Over the contract's ``telemetry.window`` (the last 28 days by default, ending today UTC), from
one agent's ``spans`` and ``work_items``:

- workflow: cycle time p50 and p90 (hours, order-statistic intervals), automation, escalation
  and rework rates and the production error rate (Wilson intervals);
- adoption: the share of the agent's work items that a span of the agent names (or the
  contract's adoption query);
- outcomes: each business and customer metric from its query, the mean of its values (Wilson
  when every value is 0 or 1, else bootstrap, or the normal interval on large samples);

each with its baseline and target, whether it is on the linear path from baseline (on the day
the agent went live) to target (one window later), and a weekly series. Every aggregation runs
in DuckDB; the contract's queries run on a locked-down connection (``_sandbox``). Red flags
(``_flags``) read the result. See docs/scorecard.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from evals.contract import Contract, OutcomeMetric, window_days
from evals.errors import UserError, display_path
from evals.metrics import (
    METRICS,
    MetricValue,
    fmt_unit,
    mean_interval,
    quantile_interval,
    wilson_interval,
)
from evals.scorecard._sandbox import lock_down, run_query
from evals.store import ResultsStore, connect_agent, first_telemetry_day

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "STATUSES",
    "Measurement",
    "RedFlag",
    "Scorecard",
    "Status",
    "WeekPoint",
    "describe",
    "measure",
]

Status = Literal[
    "target_met", "on_track", "behind", "worse_than_baseline", "within_budget", "over_budget",
    "measured", "not_measured",
]  # fmt: skip
STATUSES: tuple[str, ...] = (
    "target_met", "on_track", "behind", "worse_than_baseline", "within_budget", "over_budget",
    "measured", "not_measured",
)  # fmt: skip
"""``target_met``: at or beyond the target; ``on_track``: at or beyond where the linear path
from baseline to target is by now; ``behind``: short of it; ``worse_than_baseline``: the whole
interval is worse than the baseline; ``within_budget`` / ``over_budget``: the production error
rate against the error budget; ``measured``: no baseline to hold it against (cycle time p90);
``not_measured``: no telemetry, stale telemetry, or no query."""

_HISTORY_MAX_DAYS = 366
_WORKFLOW = ("cycle_time_p50_h", "cycle_time_p90_h", "automation_rate", "escalation_rate",
             "rework_rate")  # fmt: skip


@dataclass(frozen=True)
class WeekPoint:
    """One week of a measurement (weeks start on Monday, UTC)."""

    week: date
    value: float | None
    n: int


@dataclass(frozen=True)
class RedFlag:
    """A pattern the contract warns about, seen in the measurements."""

    name: Literal[
        "adoption_without_outcome", "outcome_without_adoption", "workflow_better_customer_worse"
    ]
    message: str
    """What was seen, with the numbers."""
    metrics: tuple[str, ...]
    """The measurements it concerns (their ``key``)."""


@dataclass(frozen=True)
class Measurement:
    """One metric of the scorecard, measured over the window."""

    key: str
    """Unique within the scorecard: the metric name, or ``outcome.business.0`` / ``.customer``."""
    metric: str
    """The gate metric it is or feeds (``escalation_rate``, ``customer_outcome_progress``)."""
    name: str
    """What it is, in words (an outcome's own name)."""
    block: Literal["workflow", "adoption", "outcome.business", "outcome.customer"]
    unit: str
    better: Literal["higher", "lower"]
    baseline: float | None
    target: float | None
    value: MetricValue
    window: str
    """The days measured, ``YYYY-MM-DD..YYYY-MM-DD``."""
    status: Status
    expected: float | None = None
    """Where the linear path from baseline to target is at the window's middle."""
    weekly: tuple[WeekPoint, ...] = ()
    red_flags: tuple[str, ...] = ()

    def shown(self, value: float | None) -> str:
        """A number of this measurement in its unit."""
        return fmt_unit(value, self.unit)

    @property
    def interval(self) -> str:
        """``[low, high]`` in the unit, empty when there is none."""
        low, high = self.value.low, self.value.high
        if low is None and high is None:
            return ""
        return f"[{self.shown(low) if low is not None else '?'}, {self.shown(high) if high is not None else '∞'}]"

    def improved(self) -> bool:
        """Better than its baseline with the interval's confidence."""
        near = self.value.low if self.better == "higher" else self.value.high
        if self.baseline is None or near is None or self.value.value is None:
            return False
        return near > self.baseline if self.better == "higher" else near < self.baseline

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``impactgate scorecard --json``)."""
        return {
            "key": self.key,
            "metric": self.metric,
            "name": self.name,
            "block": self.block,
            "unit": self.unit,
            "better": self.better,
            "baseline": self.baseline,
            "target": self.target,
            "expected": self.expected,
            "value": self.value.value,
            "low": self.value.low,
            "high": self.value.high,
            "n": self.value.n,
            "method": self.value.method,
            "window": self.window,
            "status": self.status,
            "note": self.value.note,
            "red_flags": list(self.red_flags),
            "weekly": [
                {"week": p.week.isoformat(), "value": p.value, "n": p.n} for p in self.weekly
            ],
        }


@dataclass(frozen=True)
class Scorecard:
    """One agent's contract, measured."""

    agent: str
    as_of: date
    window: str
    """``YYYY-MM-DD..YYYY-MM-DD``, both days included."""
    measurements: tuple[Measurement, ...]
    red_flags: tuple[RedFlag, ...] = ()
    latest: datetime | None = None
    """The newest telemetry record of the agent."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Why something is not measured, in words."""

    def metrics(self) -> dict[str, MetricValue]:
        """The gate metrics it measured (``TELEMETRY_METRICS`` names), for ``evaluate_gates``."""
        found: dict[str, MetricValue] = {}
        for m in self.measurements:
            if m.metric == m.key:
                found[m.key] = m.value
        for block, metric in (
            ("outcome.business", "business_outcome_progress"),
            ("outcome.customer", "customer_outcome_progress"),
        ):
            rows = [m for m in self.measurements if m.block == block]
            found[metric] = _least_progress(metric, rows)
        return found

    @property
    def measured(self) -> bool:
        """Whether anything was measured (fresh telemetry was found)."""
        return any(m.value.value is not None for m in self.measurements)

    def get(self, key: str) -> Measurement | None:
        """The measurement with this key."""
        return next((m for m in self.measurements if m.key == key), None)

    def headline(self) -> str:
        """One line: adoption, each outcome's value and status, and the red flags."""
        parts = []
        for m in self.measurements:
            if m.block in ("adoption", "outcome.business", "outcome.customer"):
                parts.append(f"{m.name} {m.shown(m.value.value)} ({m.status.replace('_', ' ')})")
        flags = (
            f"; red flags: {', '.join(f.name for f in self.red_flags)}" if self.red_flags else ""
        )
        return "; ".join(parts) + flags

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``impactgate scorecard --json``)."""
        return {
            "agent": self.agent,
            "as_of": self.as_of.isoformat(),
            "window": self.window,
            "latest": self.latest.isoformat() if self.latest else None,
            "metrics": [m.to_dict() for m in self.measurements],
            "red_flags": [
                {"name": f.name, "message": f.message, "metrics": list(f.metrics)}
                for f in self.red_flags
            ],
            "notes": list(self.notes),
        }


def _least_progress(metric: str, rows: Sequence[Measurement]) -> MetricValue:
    """An outcome's measurement mapped onto its path: 0 baseline, 1 target.

    The least of several (every business metric must hold).
    """
    if not rows:
        return MetricValue(metric, None, None, None, 0, 0, "mapped", 0.95, "no outcome")
    mapped = []
    for m in rows:
        v = m.value
        if v.value is None or m.baseline is None or m.target is None or m.target == m.baseline:
            why = v.note or "not measured"
            return MetricValue(
                metric, None, None, None, v.n, 0, "mapped", v.confidence, f"{m.name}: {why}"
            )

        def on_path(x: float | None, m: Measurement = m) -> float | None:
            assert m.baseline is not None
            assert m.target is not None
            return None if x is None else (x - m.baseline) / (m.target - m.baseline)

        low, high = on_path(v.low), on_path(v.high)
        if m.target < m.baseline:
            low, high = high, low
        mapped.append(
            MetricValue(metric, on_path(v.value), low, high, v.n, 0, "mapped", v.confidence, m.name)
        )
    return min(mapped, key=lambda x: x.value if x.value is not None else 0.0)


# --- the measurement -----------------------------------------------------------------------


@dataclass
class _Frame:
    agent: str
    as_of: date
    start: date
    """First day of the window."""
    end: date
    """The day after the window (exclusive)."""
    history: date
    """First day of the weekly series."""
    live: date
    """The day the paths start (``telemetry.start`` or the first day of telemetry)."""
    confidence: float

    @property
    def window(self) -> str:
        return f"{self.start.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"

    def expected(self, baseline: float, target: float, path_days: int) -> float:
        """Where the linear path is at the window's middle."""
        middle = self.start + (self.end - self.start) / 2
        done = (middle - self.live).days / max(1, path_days)
        return baseline + (target - baseline) * min(1.0, max(0.0, done))


def measure(
    contract: Contract,
    results: str | Path,
    *,
    as_of: date | None = None,
) -> Scorecard:
    """Measure the contract of one agent from the telemetry in ``results``.

    Args:
        contract: the agent's contract (its ``telemetry`` block says the window).
        results: the results root holding ``spans`` and ``work_items``.
        as_of: the last day of the window (default: today, UTC).

    Raises:
        UserError: an outcome or adoption query is not valid, reads what it may not, or a
            ``telemetry.tables`` file cannot be read; naming the contract file and field.
    """
    as_of = as_of or datetime.now(UTC).date()
    telemetry = contract.telemetry
    confidence = contract.autonomy.confidence
    end = as_of + timedelta(days=1)
    if telemetry is None:
        return _unmeasured(contract, as_of, end, 28, "no telemetry block in the contract")
    start = end - timedelta(days=telemetry.window_days)
    paths = [window_days(contract.adoption.window)] + [
        window_days(m.window) for m in (*contract.outcome.business, contract.outcome.customer)
    ]
    history = end - timedelta(days=min(_HISTORY_MAX_DAYS, max(telemetry.window_days, *paths)))
    history -= timedelta(days=history.weekday())  # whole weeks
    store = ResultsStore(results)
    first = first_telemetry_day(store, contract.agent)
    live = telemetry.start or (date.fromisoformat(first) if first else start)
    frame = _Frame(contract.agent, as_of, start, end, history, live, confidence)
    con = connect_agent(store, contract.agent, history.isoformat())
    try:
        _register_tables(con, contract)
        _materialize(con)
        lock_down(con)
        latest = _latest(con)
        stale = _staleness(latest, as_of, telemetry.stale_days, telemetry.stale_after)
        if stale is not None:
            card = _unmeasured(contract, as_of, end, telemetry.window_days, stale)
            return replace(card, latest=latest)
        _items(con, frame)
        rows = [*_workflow(con, frame, contract), _adoption(con, frame, contract)]
        rows += _outcomes(con, frame, contract)
    finally:
        con.close()
    from evals.scorecard._flags import red_flags

    flags = red_flags(rows)
    flagged = {
        key: tuple(f.name for f in flags if key in f.metrics) for key in (m.key for m in rows)
    }
    rows = [replace(m, red_flags=flagged[m.key]) for m in rows]
    return Scorecard(contract.agent, as_of, frame.window, tuple(rows), tuple(flags), latest)


def _unmeasured(contract: Contract, as_of: date, end: date, days: int, why: str) -> Scorecard:
    """Every measurement ``not_measured``, saying why."""
    start = end - timedelta(days=days)
    frame = _Frame(contract.agent, as_of, start, end, start, start, contract.autonomy.confidence)
    rows = [_row(frame, key, None, why=why) for key in (*_WORKFLOW, "production_error_rate")]
    rows.append(_adoption_row(frame, contract, None, why=why))
    rows += [
        _outcome_row(frame, contract, i, metric, None, why=why)
        for i, metric in _each_outcome(contract)
    ]
    return Scorecard(contract.agent, as_of, frame.window, tuple(rows), (), None, (why,))


def _each_outcome(contract: Contract) -> list[tuple[int | None, OutcomeMetric]]:
    return [*enumerate(contract.outcome.business), (None, contract.outcome.customer)]


# --- tables and freshness ---------------------------------------------------------------


def _register_tables(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """The data owner's files of ``telemetry.tables``, read before the connection is locked."""
    import pyarrow.csv as pacsv

    assert contract.telemetry is not None
    from evals.store import read_table_file

    for name, relative in contract.telemetry.tables.items():
        path = contract.resolve(relative)
        field_name = f"telemetry.tables.{name}"
        where = contract.where(field_name)
        if not path.is_file():
            raise UserError.single(where, field_name, f"{display_path(path)}: file not found")
        try:
            if path.suffix.lower() in (".csv", ".tsv") or path.name.lower().endswith(".csv.gz"):
                table = pacsv.read_csv(path)
            else:
                table = read_table_file(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise UserError.single(
                where,
                field_name,
                f"{display_path(path)}: not a readable CSV or Parquet file ({exc})",
            ) from None
        con.register(name, table)


def _materialize(con: duckdb.DuckDBPyConnection) -> None:
    """Read the agent's telemetry once.

    Its work items deduplicated (``work_items`` then reads the copy), and the span columns the
    built-in metrics need (``_sp``).
    """
    con.execute(
        "CREATE TEMP TABLE _wi AS SELECT * FROM _work_items_fast;"
        "CREATE OR REPLACE VIEW work_items AS SELECT * FROM _wi;"
        # one row per trace: the duplicates a span may have change neither min, max nor any
        "CREATE TEMP TABLE _tr AS SELECT trace_id, min(start) AS start, max(start) AS last, "
        "bool_or(status = 'error' OR error_type IS NOT NULL) AS errored, "
        "list(DISTINCT work_item_id) FILTER (work_item_id IS NOT NULL) AS items "
        "FROM _spans_fast GROUP BY trace_id"
    )


def _latest(con: duckdb.DuckDBPyConnection) -> datetime | None:
    row = con.execute(
        "SELECT greatest((SELECT max(last) FROM _tr), "
        "(SELECT max(greatest(opened_at, coalesce(closed_at, opened_at))) FROM _wi))"
    ).fetchone()
    value = row[0] if row else None
    return value if isinstance(value, datetime) else None


def _staleness(latest: datetime | None, as_of: date, days: int, written: str) -> str | None:
    if latest is None:
        return "no telemetry for this agent in the store"
    age = (as_of - latest.astimezone(UTC).date()).days
    if age > days:
        return (
            f"the newest telemetry is {age} days old (telemetry.stale_after is {written}): "
            "not measured"
        )
    return None


def _items(con: duckdb.DuckDBPyConnection, frame: _Frame) -> None:
    """``_items``: the agent's work items since the history's start.

    With whether the agent handled each (a span of the agent names it) and its week.
    """
    con.execute(
        "CREATE TEMP TABLE _items AS "
        "SELECT w.work_item_id, w.opened_at, w.closed_at, "
        "coalesce(w.resolved_by = 'agent', false) AS by_agent, "
        "coalesce(w.escalated, false) AS escalated, coalesce(w.reopened, false) AS reopened, "
        "h.work_item_id IS NOT NULL AS handled, "
        "CAST(date_trunc('week', w.opened_at) AS DATE) AS week, "
        "w.opened_at >= CAST($start AS TIMESTAMPTZ) AS in_window "
        "FROM _wi w LEFT JOIN (SELECT DISTINCT unnest(items) AS work_item_id FROM _tr) h "
        "USING (work_item_id) "
        "WHERE w.opened_at >= CAST($history AS TIMESTAMPTZ) AND w.opened_at < CAST($end AS TIMESTAMPTZ)",
        {
            "start": frame.start.isoformat(),
            "history": frame.history.isoformat(),
            "end": frame.end.isoformat(),
        },
    )


# --- workflow ----------------------------------------------------------------------------

_RATES: dict[str, tuple[str, str]] = {
    # metric: (events, out of)
    "automation_rate": (
        "closed_at IS NOT NULL AND by_agent AND NOT escalated", "closed_at IS NOT NULL"
    ),
    "escalation_rate": ("handled AND escalated", "handled"),
    "rework_rate": (
        "closed_at IS NOT NULL AND by_agent AND reopened", "closed_at IS NOT NULL AND by_agent"
    ),
    "adoption_rate": ("handled", "true"),
}  # fmt: skip


def _rate(events: int, n: int, name: str, confidence: float, what: str) -> MetricValue:
    if n == 0:
        return MetricValue(
            name, None, None, None, 0, 0, "wilson", confidence, f"no data: no {what} in the window"
        )
    low, high = wilson_interval(events, n, confidence)
    return MetricValue(name, events / n, low, high, n, 0, "wilson", confidence)


def _workflow(
    con: duckdb.DuckDBPyConnection, frame: _Frame, contract: Contract
) -> list[Measurement]:
    rates = ", ".join(
        f"count(*) FILTER ({events}) AS {name}_events, count(*) FILTER ({total}) AS {name}_n"
        for name, (events, total) in _RATES.items()
    )
    window = con.execute(f"SELECT {rates} FROM _items WHERE in_window").fetchone()
    assert window is not None
    weekly = con.execute(
        f"SELECT week, {rates}, quantile_cont(epoch(closed_at - opened_at) / 3600, 0.5) "
        "FILTER (closed_at IS NOT NULL), quantile_cont(epoch(closed_at - opened_at) / 3600, 0.9) "
        "FILTER (closed_at IS NOT NULL) FROM _items GROUP BY week ORDER BY week"
    ).fetchall()
    rows: list[Measurement] = []
    names = list(_RATES)
    hours = con.execute(
        "SELECT epoch(closed_at - opened_at) / 3600 AS h FROM _items "
        "WHERE in_window AND closed_at IS NOT NULL ORDER BY h"
    ).fetchnumpy()["h"]
    hours = np.asarray(hours, dtype=np.float64)
    for key, q, col in (("cycle_time_p50_h", 0.5, -2), ("cycle_time_p90_h", 0.9, -1)):
        value = _quantile(key, hours, q, frame.confidence)
        # n of a week: its closed items (the automation rate's denominator, column 2)
        series = tuple(WeekPoint(w[0], w[col], int(w[2])) for w in weekly)
        rows.append(_row(frame, key, value, contract=contract, weekly=series))
    for i, name in enumerate(names[:3]):
        events, total = window[2 * i], window[2 * i + 1]
        what = {"automation_rate": "closed work items", "escalation_rate": "work items handled by the agent",
                "rework_rate": "resolutions by the agent"}[name]  # fmt: skip
        value = _rate(int(events), int(total), name, frame.confidence, what)
        series = tuple(
            WeekPoint(
                w[0], (w[1 + 2 * i] / w[2 + 2 * i]) if w[2 + 2 * i] else None, int(w[2 + 2 * i])
            )
            for w in weekly
        )
        rows.append(_row(frame, name, value, contract=contract, weekly=series))
    rows.append(_errors(con, frame, contract))
    return rows


def _quantile(name: str, hours: np.ndarray, q: float, confidence: float) -> MetricValue:
    if hours.size == 0:
        return MetricValue(name, None, None, None, 0, 0, "order-statistic", confidence,
                           "no data: no work item closed in the window")  # fmt: skip
    low, high = quantile_interval(hours, q, confidence)
    return MetricValue(name, float(np.quantile(hours, q)), low, high, int(hours.size), 0,
                       "order-statistic", confidence)  # fmt: skip


def _errors(con: duckdb.DuckDBPyConnection, frame: _Frame, contract: Contract) -> Measurement:
    """The share of the agent's traces with a span in error; a trace counts where it starts."""
    rows = con.execute(
        "SELECT CAST(date_trunc('week', start) AS DATE) AS week, count(*), "
        "count(*) FILTER (errored), count(*) FILTER (start >= CAST($start AS TIMESTAMPTZ)), "
        "count(*) FILTER (errored AND start >= CAST($start AS TIMESTAMPTZ)) "
        "FROM _tr WHERE start >= CAST($history AS TIMESTAMPTZ) "
        "AND start < CAST($end AS TIMESTAMPTZ) GROUP BY week ORDER BY week",
        {
            "start": frame.start.isoformat(),
            "history": frame.history.isoformat(),
            "end": frame.end.isoformat(),
        },
    ).fetchall()
    n = sum(int(r[3]) for r in rows)
    events = sum(int(r[4]) for r in rows)
    value = _rate(events, n, "production_error_rate", frame.confidence, "traces of the agent")
    series = tuple(WeekPoint(r[0], r[2] / r[1] if r[1] else None, int(r[1])) for r in rows)
    return _row(frame, "production_error_rate", value, contract=contract, weekly=series)


def _row(
    frame: _Frame,
    key: str,
    value: MetricValue | None,
    *,
    contract: Contract | None = None,
    weekly: tuple[WeekPoint, ...] = (),
    why: str = "",
) -> Measurement:
    """A workflow measurement with its baseline, target and status."""
    spec = METRICS[key]
    value = value or MetricValue(key, None, None, None, 0, 0, "none", frame.confidence, why)
    baseline = target = None
    path_days = 0
    if contract is not None:
        workflow = contract.workflow
        if key == "production_error_rate":
            target = workflow.error_budget
        elif key != "cycle_time_p90_h":
            planned = workflow.cycle_time if key == "cycle_time_p50_h" else getattr(workflow, key)
            baseline, target = planned.baseline, planned.target
        path_days = window_days(contract.adoption.window)
    label = spec.description.split(",")[0]
    m = Measurement(
        key, key, _LABELS.get(key, label), "workflow", spec.unit, spec.better, baseline, target,
        value, frame.window, "not_measured", weekly=weekly,
    )  # fmt: skip
    return replace(m, **_status(m, frame, path_days))


_LABELS = {
    "cycle_time_p50_h": "Cycle time p50",
    "cycle_time_p90_h": "Cycle time p90",
    "automation_rate": "Automation rate",
    "escalation_rate": "Escalation rate",
    "rework_rate": "Rework rate",
    "production_error_rate": "Production error rate",
}


def _status(m: Measurement, frame: _Frame, path_days: int) -> dict[str, Any]:
    """``status`` and ``expected`` of a measurement (see ``STATUSES``)."""
    v = m.value
    if v.value is None:
        return {"status": "not_measured"}
    if m.key == "production_error_rate":
        assert m.target is not None
        return {"status": "within_budget" if v.value <= m.target else "over_budget"}
    if m.baseline is None or m.target is None:
        return {"status": "measured"}
    sign = 1.0 if m.better == "higher" else -1.0
    far = v.high if m.better == "higher" else v.low
    worse = far if far is not None else v.value
    if sign * (worse - m.baseline) < 0:
        return {"status": "worse_than_baseline"}
    if sign * (v.value - m.target) >= 0:
        return {"status": "target_met"}
    expected = frame.expected(m.baseline, m.target, path_days)
    status = "on_track" if sign * (v.value - expected) >= 0 else "behind"
    return {"status": status, "expected": expected}


# --- adoption and outcomes ------------------------------------------------------------------


def _adoption(con: duckdb.DuckDBPyConnection, frame: _Frame, contract: Contract) -> Measurement:
    query = contract.adoption.query
    if query is not None:
        value, series = _queried(con, frame, contract, "adoption_rate", query, "adoption.query")
        return _adoption_row(frame, contract, value, weekly=series)
    window = con.execute(
        "SELECT count(*) FILTER (handled), count(*) FROM _items WHERE in_window"
    ).fetchone()
    assert window is not None
    value = _rate(int(window[0]), int(window[1]), "adoption_rate", frame.confidence,
                  "work items of the agent")  # fmt: skip
    weekly = con.execute(
        "SELECT week, count(*) FILTER (handled), count(*) FROM _items GROUP BY week ORDER BY week"
    ).fetchall()
    series = tuple(WeekPoint(w[0], w[1] / w[2] if w[2] else None, int(w[2])) for w in weekly)
    return _adoption_row(frame, contract, value, weekly=series)


def _adoption_row(
    frame: _Frame,
    contract: Contract,
    value: MetricValue | None,
    *,
    weekly: tuple[WeekPoint, ...] = (),
    why: str = "",
) -> Measurement:
    adoption = contract.adoption
    value = value or MetricValue(
        "adoption_rate", None, None, None, 0, 0, "none", frame.confidence, why
    )
    m = Measurement(
        "adoption_rate", "adoption_rate", adoption.measure, "adoption", "share", "higher",
        adoption.baseline, adoption.target, value, frame.window, "not_measured", weekly=weekly,
    )  # fmt: skip
    return replace(m, **_status(m, frame, window_days(adoption.window)))


def _outcomes(
    con: duckdb.DuckDBPyConnection, frame: _Frame, contract: Contract
) -> list[Measurement]:
    rows = []
    for i, metric in _each_outcome(contract):
        field_name = f"outcome.business.{i}.query" if i is not None else "outcome.customer.query"
        if metric.query is None:
            rows.append(_outcome_row(frame, contract, i, metric, None,
                                     why="planned, not measured: the outcome has no query"))  # fmt: skip
            continue
        gate = "business_outcome_progress" if i is not None else "customer_outcome_progress"
        value, series = _queried(con, frame, contract, gate, metric.query, field_name)
        rows.append(_outcome_row(frame, contract, i, metric, value, weekly=series))
    return rows


def _outcome_row(
    frame: _Frame,
    contract: Contract,
    index: int | None,
    metric: OutcomeMetric,
    value: MetricValue | None,
    *,
    weekly: tuple[WeekPoint, ...] = (),
    why: str = "",
) -> Measurement:
    gate = "business_outcome_progress" if index is not None else "customer_outcome_progress"
    key = f"outcome.business.{index}" if index is not None else "outcome.customer"
    value = value or MetricValue(gate, None, None, None, 0, 0, "none", frame.confidence, why)
    better: Literal["higher", "lower"] = "higher" if metric.target >= metric.baseline else "lower"
    block: Literal["outcome.business", "outcome.customer"] = (
        "outcome.business" if index is not None else "outcome.customer"
    )
    m = Measurement(
        key, gate, metric.name, block, metric.unit, better, metric.baseline, metric.target,
        value, frame.window, "not_measured", weekly=weekly,
    )  # fmt: skip
    return replace(m, **_status(m, frame, window_days(metric.window)))


def _queried(
    con: duckdb.DuckDBPyConnection,
    frame: _Frame,
    contract: Contract,
    name: str,
    query: str,
    field_name: str,
) -> tuple[MetricValue, tuple[WeekPoint, ...]]:
    """A query's values over the window (with an interval) and per week."""
    assert contract.telemetry is not None
    table = run_query(
        con, query, where=contract.where(field_name), field=field_name,
        max_rows=contract.telemetry.max_rows, timeout_s=contract.telemetry.timeout_s,
    )  # fmt: skip
    con.register("_values", table)
    try:
        params = {"start": frame.start, "end": frame.end}
        n, mean, std, binary, events = con.execute(
            "SELECT count(value), avg(value), stddev_samp(value), "
            "coalesce(bool_and(value IN (0, 1)), false), sum(value) FROM _values "
            "WHERE day >= $start AND day < $end AND value IS NOT NULL",
            params,
        ).fetchone() or (0, None, None, False, 0)
        weekly = con.execute(
            "SELECT CAST(date_trunc('week', day) AS DATE) AS week, avg(value), count(value) "
            "FROM _values WHERE day >= $history AND day < $end AND value IS NOT NULL "
            "GROUP BY week ORDER BY week",
            {"history": frame.history, "end": frame.end},
        ).fetchall()
        n = int(n)
        confidence = frame.confidence
        if n == 0:
            value = MetricValue(name, None, None, None, 0, 0, "none", confidence,
                                f"no data: the query ({field_name}) returned no value in the window")  # fmt: skip
        elif binary:
            value = _rate(int(events), n, name, confidence, "")
        else:
            values = None
            from evals.metrics._stats import BOOTSTRAP_MAX_N

            if n <= BOOTSTRAP_MAX_N:
                # Sorted and rounded: the bootstrap is seeded from the values, and a parallel
                # scan's order (and a parallel sum's last bits) vary from run to run.
                values = con.execute(
                    "SELECT value FROM _values WHERE day >= $start AND day < $end "
                    "AND value IS NOT NULL ORDER BY value", params,
                ).fetchnumpy()["value"]  # fmt: skip
                values = np.round(np.asarray(values, dtype=np.float64), 9)
            interval, method = mean_interval(n, float(mean), float(std or 0.0), confidence, values)
            low, high = interval if interval is not None else (None, None)
            note = "" if interval is not None else "one value cannot give an interval"
            value = MetricValue(name, float(mean), low, high, n, 0, method, confidence, note)
    finally:
        con.unregister("_values")
    return value, tuple(WeekPoint(w[0], float(w[1]), int(w[2])) for w in weekly)


def describe(m: Measurement) -> str:
    """``0.300 [0.280, 0.320] n=812`` in the measurement's unit."""
    if m.value.value is None:
        return "—"
    interval = f" {m.interval}" if m.interval else ""
    return f"{m.shown(m.value.value)}{interval} n={m.value.n}"
