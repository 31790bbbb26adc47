"""Small telemetry with known answers: work items as a CSV export, spans as OTLP JSON lines.

``Item`` describes one work item; :func:`write_telemetry` writes the export and one trace per
agent-handled item (an ``invoke_agent`` span naming the item, in error when asked), as an
OpenTelemetry Collector's file exporter would.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass
class Item:
    id: str
    opened: datetime
    hours: float | None = 2.0
    """Hours to close; ``None``: still open."""
    handled: bool = True
    """The agent worked on it (a span names it)."""
    resolved_by: str = "agent"
    escalated: bool = False
    reopened: bool = False
    error: bool = False
    """The agent's trace for it ended in an error."""
    outcomes: dict[str, Any] = field(default_factory=dict)


def _hex(text: str, digits: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def _ns(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1_000_000_000))


def write_telemetry(folder: Path, agent: str, items: list[Item], name: str = "t") -> list[Path]:
    """``<name>.jsonl`` (spans) and ``<name>-items.csv`` (work items) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    outcome_names = sorted({k for i in items for k in i.outcomes})
    export = folder / f"{name}-items.csv"
    with export.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "agent", "opened_at", "closed_at", "resolved_by", "escalated",
                         "reopened", *outcome_names])  # fmt: skip
        for i in items:
            closed = i.opened + timedelta(hours=i.hours) if i.hours is not None else None
            writer.writerow([
                i.id, agent, i.opened.isoformat(), closed.isoformat() if closed else "",
                i.resolved_by if closed else "", str(i.escalated).lower(),
                str(i.reopened).lower(), *(i.outcomes.get(k, "") for k in outcome_names),
            ])  # fmt: skip
    traces = folder / f"{name}.jsonl"
    with traces.open("w") as handle:
        for i in items:
            if not i.handled:
                continue
            start = i.opened + timedelta(minutes=1)
            span = {
                "traceId": _hex(f"{name}{i.id}", 32),
                "spanId": _hex(f"{name}{i.id}s", 16),
                "name": f"invoke_agent {agent}",
                "kind": 1,
                "startTimeUnixNano": _ns(start),
                "endTimeUnixNano": _ns(start + timedelta(seconds=2)),
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                    {"key": "gen_ai.agent.name", "value": {"stringValue": agent}},
                    {"key": "impactgate.work_item.id", "value": {"stringValue": i.id}},
                ],
                "status": {"code": 2, "message": "tool failed"} if i.error else {},
            }
            document = {
                "resourceSpans": [{
                    "resource": {"attributes": [
                        {"key": "service.name", "value": {"stringValue": agent}}]},
                    "scopeSpans": [{"scope": {"name": "agent"}, "spans": [span]}],
                }]
            }  # fmt: skip
            handle.write(json.dumps(document) + "\n")
    return [traces, export]


def days_ago(as_of: datetime, days: float, hour: int = 9) -> datetime:
    """A moment ``days`` before ``as_of``'s day, at ``hour`` UTC."""
    day = datetime(as_of.year, as_of.month, as_of.day, hour, tzinfo=UTC)
    return day - timedelta(days=days)
