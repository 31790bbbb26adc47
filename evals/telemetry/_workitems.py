"""Work items from a ticketing or case-management export: CSV, JSON lines or Parquet.

:class:`WorkItemMapping` says which column of the export is which field (with the common
names as defaults); :func:`read_work_items` reads a file with it into the ``work_items``
columns, a bad row reported with its line and field and left out, the others kept. Outcome
fields (CSAT, converted, refund amount …) are typed (numbers, true/false, text) and masked
like span content before they are stored. Resolvers are recorded as ``agent`` or ``human``
only: who the person was is not kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa

from evals.contract import WorkItemMapping
from evals.store import WORK_ITEMS_SCHEMA
from evals.telemetry._mask import TelemetryMasker
from evals.telemetry._otlp import open_maybe_gzip
from evals.telemetry._problems import ProblemLog
from evals.telemetry._spans import agent_name

__all__ = ["COMMON_COLUMNS", "WorkItemFormat", "WorkItemMapping", "WorkItemRows", "read_work_items"]

_FIELDS: tuple[str, ...] = (
    "work_item_id", "opened_at", "closed_at", "updated_at", "resolved_by", "escalated",
    "reopened", "outcomes", "seq",
)  # fmt: skip

WorkItemFormat = Literal["csv", "jsonl", "parquet"]

COMMON_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "work_item_id", "ticket_id", "case_id", "issue_id", "key", "number"),
    "agent": ("agent", "slice", "workflow", "queue"),
    "opened_at": ("opened_at", "created_at", "created", "opened", "submitted_at"),
    "closed_at": ("closed_at", "resolved_at", "solved_at", "closed", "resolved", "completed_at"),
    "updated_at": ("updated_at", "modified_at", "last_modified", "updated"),
    "resolved_by": ("resolved_by", "resolver", "solved_by", "closed_by"),
    "escalated": ("escalated", "escalated_to", "escalated_to_human", "handed_off", "handoff"),
    "reopened": ("reopened", "reworked", "rework", "reopen_count", "reopens"),
}
"""Column names looked for (case-insensitively) when the mapping names none, in order."""

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "none", "null", ""})


@dataclass
class WorkItemRows:
    """Work items read from one file, as columns (masked when turned into Arrow)."""

    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {name: [] for name in (*_FIELDS, "agent", "date")}
    )
    rejected: int = 0

    def __len__(self) -> int:
        return len(self.columns["work_item_id"])

    def to_arrow(self, masking: TelemetryMasker) -> pa.Table:
        """The ``work_items`` rows (with ``agent`` and ``date``), outcome texts masked."""
        outcomes = self.columns["outcomes"]
        agents = self.columns["agent"]
        encoded: list[bytes | None] = []
        by_agent: dict[str, list[int]] = {}
        for i, agent in enumerate(agents):
            by_agent.setdefault(agent, []).append(i)
        masked: list[dict[str, Any] | None] = list(outcomes)
        for agent, rows in by_agent.items():
            slot = masking.for_agent(agent)
            texts = [v for i in rows for v in (outcomes[i] or {}).values() if isinstance(v, str)]
            table = slot.mask(texts) if slot.active else {}
            if table:
                for i in rows:
                    values = outcomes[i]
                    if values:
                        masked[i] = {
                            k: table.get(v, v) if isinstance(v, str) else v
                            for k, v in values.items()
                        }
        encoded = [orjson.dumps(v) if v else None for v in masked]
        arrays: dict[str, pa.Array] = {}
        for f in WORK_ITEMS_SCHEMA:
            if f.name in ("batch_id", "ingested_at"):
                continue
            if f.name == "outcomes":
                arrays[f.name] = pa.array(encoded, pa.binary()).cast(pa.string())
            else:
                arrays[f.name] = pa.array(self.columns[f.name], f.type)
        arrays["agent"] = pa.array(agents, pa.string())
        arrays["date"] = pa.array(self.columns["date"], pa.string())
        return pa.table(arrays)


class _RowError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _rows(
    path: Path, fmt: WorkItemFormat, log: ProblemLog
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """``(where, row)`` for each row of the file.

    A row that cannot be read is reported in ``log`` and given as ``None``.
    """
    if fmt == "csv":
        with (
            open_maybe_gzip(path) as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text,
        ):
            reader = csv.DictReader(text, strict=True)
            start = 2
            try:
                for row in reader:
                    if None in row:
                        extra = len(row[None])
                        log.add(
                            f"line {start}", f"{extra} more value(s) than columns; row left out"
                        )
                        yield f"line {start}", None
                    elif any(v is None for v in row.values()):
                        log.add(f"line {start}", "fewer values than columns; row left out")
                        yield f"line {start}", None
                    else:
                        yield f"line {start}", row
                    start = reader.line_num + 1
            except (csv.Error, UnicodeDecodeError) as exc:
                message = f"unreadable CSV from here ({exc}); the rest of the file left out"
                log.add(f"line {start}", message)
    elif fmt == "jsonl":
        with open_maybe_gzip(path) as handle:
            for line_no, raw_line in enumerate(handle, start=1):
                if not raw_line.strip():
                    continue
                try:
                    value = orjson.loads(raw_line)
                except orjson.JSONDecodeError as exc:
                    log.add(f"line {line_no}", f"invalid JSON: {exc.msg}; row left out")
                    yield f"line {line_no}", None
                    continue
                if not isinstance(value, dict):
                    log.add(
                        f"line {line_no}",
                        f"is a JSON {type(value).__name__}, not an object; row left out",
                    )
                    yield f"line {line_no}", None
                    continue
                yield f"line {line_no}", value
    else:
        import duckdb

        try:
            with duckdb.connect() as con:
                reader = con.sql(
                    "SELECT * FROM read_parquet(?)", params=[str(path)]
                ).to_arrow_reader(8192)
                number = 0
                for batch in reader:
                    for row in batch.to_pylist():
                        number += 1
                        yield f"row {number}", row
        except duckdb.Error as exc:
            log.add("", f"not a readable Parquet file ({str(exc).splitlines()[0]})")


def _columns(
    header: list[str], mapping: WorkItemMapping, log: ProblemLog, *, strict: bool
) -> dict[str, str | None] | None:
    """Which column is which field.

    With a fixed header (CSV, Parquet; ``strict``) a missing required column rejects the file
    (``None``, with a problem); JSON lines may leave a key out of some rows, so there a missing
    column is the row's problem.
    """
    lower = {h.lower(): h for h in header}
    chosen: dict[str, str | None] = {}
    ok = True
    for name, common in COMMON_COLUMNS.items():
        given = getattr(mapping, name)
        if given is not None:
            if strict and given not in header:
                log.add(
                    f"mapping.{name}",
                    f"column '{given}' is not in the file; columns: {', '.join(header)}",
                )
                ok = False
            chosen[name] = given
        else:
            chosen[name] = next((lower[c] for c in common if c in lower), None)
    if strict:
        for name in ("id", "opened_at"):
            if chosen[name] is None:
                looked = ", ".join(COMMON_COLUMNS[name])
                log.add(
                    f"mapping.{name}",
                    f"no column for it (looked for {looked}); name the column in the mapping",
                )
                ok = False
        if chosen["agent"] is None and mapping.default_agent is None:
            looked = ", ".join(COMMON_COLUMNS["agent"])
            log.add(
                "mapping.agent",
                f"no agent column (looked for {looked}); name it or set default_agent",
            )
            ok = False
        for outcome, column in (mapping.outcomes or {}).items():
            if column not in header:
                log.add(f"mapping.outcomes.{outcome}", f"column '{column}' is not in the file")
                ok = False
    return chosen if ok else None


def _value(row: dict[str, Any], chosen: dict[str, str | None], name: str) -> Any:
    column = chosen[name]
    return row.get(column) if column is not None else None


def _time(value: Any, zone: ZoneInfo, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds since 1973
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if text.isdigit():
        return _time(int(text), zone, field)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        example = "ISO 8601, e.g. 2026-03-01T09:30:00Z"
        raise _RowError(field, f"{text[:40]!r} is not a date and time ({example})") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _flag(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        return float(text) != 0
    except ValueError:
        return True  # a team or a person named: it went to them


def _typed(value: Any) -> Any:
    """An outcome value typed: numbers and true/false from text, text as text."""
    if not isinstance(value, str):
        return value.isoformat() if isinstance(value, datetime | date) else value
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_work_items(
    path: Path, fmt: WorkItemFormat, mapping: WorkItemMapping, log: ProblemLog
) -> WorkItemRows:
    """The work items of one export, each bad row reported in ``log`` and left out.

    Args:
        path: the export (CSV with a header, JSON lines of objects, or Parquet; ``.gz`` for
            the text ones is read as is).
        fmt: its format.
        mapping: which column is which field.
        log: where problems go, each naming the line (or row) and the field.

    Returns:
        The good rows; ``rejected`` counts the bad ones.
    """
    zone = ZoneInfo(mapping.timezone)
    resolvers = {r.lower() for r in mapping.agent_resolvers}
    out = WorkItemRows()
    cols = out.columns
    chosen: dict[str, str | None] | None = None
    header: list[str] = []
    seq = 0
    for where, row in _rows(path, fmt, log):
        if row is None:
            out.rejected += 1
            continue
        if fmt == "jsonl" and (chosen is None or any(k not in header for k in row)):
            header = list(dict.fromkeys([*header, *row]))
            chosen = _columns(header, mapping, log, strict=False)
        elif chosen is None:
            header = list(row)
            chosen = _columns(header, mapping, log, strict=True)
        if chosen is None:  # a required column is missing: the whole file is left out
            out.rejected += 1
            continue
        seq += 1
        try:
            item = _item(row, chosen, mapping, zone, resolvers)
        except _RowError as exc:
            column = chosen.get(exc.field)
            named = f"field '{exc.field}'" + (f" (column '{column}')" if column else "")
            log.add(f"{where}: {named}", f"{exc}; row left out")
            out.rejected += 1
            continue
        agent, opened = item[1], item[2]
        cols["work_item_id"].append(item[0])
        cols["agent"].append(agent)
        cols["date"].append(opened.strftime("%Y-%m-%d"))
        for name, value in zip(_FIELDS[1:-1], item[2:], strict=True):
            cols[name].append(value)
        cols["seq"].append(seq)
    return out


def _item(
    row: dict[str, Any],
    chosen: dict[str, str | None],
    mapping: WorkItemMapping,
    zone: ZoneInfo,
    resolvers: set[str],
) -> tuple[Any, ...]:
    """``(id, agent, opened, closed, updated, resolved_by, escalated, reopened, outcomes)``."""
    item_id = _value(row, chosen, "id")
    if item_id is None or str(item_id).strip() == "":
        looked = (
            f" (no column named {', '.join(COMMON_COLUMNS['id'])})" if chosen["id"] is None else ""
        )
        raise _RowError("id", f"empty{looked}")
    raw_agent = _value(row, chosen, "agent")
    if raw_agent is None or str(raw_agent).strip() == "":
        if mapping.default_agent is None:
            raise _RowError("agent", "empty (set default_agent for rows without one)")
        agent = mapping.default_agent
    else:
        agent = agent_name(str(raw_agent).strip())
    opened = _time(_value(row, chosen, "opened_at"), zone, "opened_at")
    if opened is None:
        raise _RowError("opened_at", "empty")
    closed = _time(_value(row, chosen, "closed_at"), zone, "closed_at")
    if closed is not None and closed < opened:
        raise _RowError("closed_at", "is before opened_at")
    updated = _time(_value(row, chosen, "updated_at"), zone, "updated_at")
    resolved_by = None
    who = _value(row, chosen, "resolved_by")
    if who is not None and str(who).strip() != "":
        lowered = str(who).strip().lower()
        resolved_by = "agent" if lowered in resolvers or agent_name(lowered) == agent else "human"
    escalated = _flag(_value(row, chosen, "escalated")) if chosen["escalated"] else None
    reopened = _flag(_value(row, chosen, "reopened")) if chosen["reopened"] else None
    if mapping.outcomes is not None:
        outcomes = {name: _typed(row.get(column)) for name, column in mapping.outcomes.items()}
    else:
        used = {c for c in chosen.values() if c}
        outcomes = {k: _typed(v) for k, v in row.items() if k not in used}
    outcomes = {k: v for k, v in outcomes.items() if v is not None}
    return (
        str(item_id).strip(), agent, opened, closed, updated, resolved_by, escalated, reopened,
        outcomes,
    )  # fmt: skip
