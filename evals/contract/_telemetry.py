"""The contract's ``telemetry`` block: where production telemetry comes from and how to read it.

``sources`` are ingested (idempotently) before every run; ``work_items`` maps the work-item
export's columns; ``window`` and ``stale_after`` say which days the scorecard measures and when
telemetry is too old to measure anything. Outcome and adoption queries (``query:`` on those
blocks) run over the tables this block fills. See docs/scorecard.md.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from evals.vocab import AGENT_PATTERN

__all__ = [
    "FileSource",
    "PythonSource",
    "Telemetry",
    "TelemetrySource",
    "WorkItemMapping",
]

_DAYS = r"^[1-9][0-9]*d$"
_TABLE = r"^[a-z_][a-z0-9_]{0,62}$"


class WorkItemMapping(BaseModel):
    """Which column of a work-item export is which field.

    A field left unset is looked for under its common names (``COMMON_COLUMNS`` of
    ``evals.telemetry``); ``id`` and ``opened_at`` must be found, and ``agent`` unless
    ``default_agent`` is given.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str | None = None
    """The work item's id (a ticket number); a later export of the same id replaces it."""
    agent: str | None = None
    """The agent (workflow slice) the item belongs to."""
    default_agent: str | None = Field(default=None, pattern=AGENT_PATTERN)
    """The agent of every row when the export has no agent column (one queue, one agent)."""
    opened_at: str | None = None
    """When the item was opened."""
    closed_at: str | None = None
    """When it was closed or resolved (empty while open)."""
    updated_at: str | None = None
    """When the source last changed it: the latest wins over earlier exports."""
    resolved_by: str | None = None
    """Who resolved it: a value in ``agent_resolvers`` (or the agent's name) means the agent,
    anything else a person."""
    escalated: str | None = None
    """Handed to a person: true/false, a count, or the team or person it went to."""
    reopened: str | None = None
    """Reopened or redone: true/false, or a count of reopens."""
    agent_resolvers: list[str] = Field(
        default_factory=lambda: ["agent", "bot", "ai", "assistant", "automation", "virtual agent"]
    )
    """Values of ``resolved_by`` that mean the agent (case-insensitive)."""
    outcomes: dict[str, str] | None = None
    """Outcome name → column (``{csat: "CSAT score"}``); unset: every column not mapped to a
    field above is kept as an outcome under its own name."""
    timezone: str = "UTC"
    """The time zone of times written without one."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return value


class _Frozen(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


class FileSource(_Frozen):
    """Telemetry files: OTLP JSON or protobuf traces, work-item exports (CSV, JSONL, Parquet)."""

    kind: Literal["files"] = "files"
    """Files on disk; a source written as a plain string is one."""
    path: str = Field(min_length=1)
    """A file or a glob (``telemetry/*.jsonl.gz``), relative to the project root."""

    @model_validator(mode="before")
    @classmethod
    def _plain_path(cls, value: Any) -> Any:
        """A source written as a plain string is its path."""
        return {"path": value} if isinstance(value, str) else value


class PythonSource(_Frozen):
    """A Python function that produces telemetry files and returns their paths.

    Called as ``fn(folder=<cache folder>, end=<today, UTC>, **params)`` before each run; the
    folder is ``<results>/cache/telemetry/<agent>``. What it returns (a list of paths) is
    ingested like a ``files`` source: a file whose content was ingested before is skipped.
    """

    kind: Literal["python"]
    """Call a Python function."""
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """``module:function``, importable from the project root."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed to the function."""


def _source_kind(value: Any) -> str:
    """A string, or a mapping without ``kind``, is a ``files`` source."""
    if isinstance(value, dict):
        return str(value.get("kind", "files"))
    return str(getattr(value, "kind", "files"))


TelemetrySource = Annotated[
    Annotated[FileSource, Tag("files")] | Annotated[PythonSource, Tag("python")],
    Discriminator(_source_kind),
]


class Telemetry(_Frozen):
    """Production telemetry: the sources ingested before every run and how they are read.

    The scorecard measures the workflow metrics, adoption and each outcome from the ``spans``
    and ``work_items`` tables these sources fill (see docs/scorecard.md).
    """

    sources: list[TelemetrySource] = Field(default_factory=list)
    """What to ingest before every run: file paths or globs (a string, or ``{path: ...}``),
    or ``{kind: python, function: "module:func", params: {...}}``. Ingest is idempotent: a
    file already ingested is skipped, a span or work item stored twice counts once."""
    work_items: WorkItemMapping = Field(default_factory=WorkItemMapping)
    """Which column of the work-item exports is which field (common names by default)."""
    work_item_attribute: str = Field(default="impactgate.work_item.id", min_length=1)
    """The span attribute naming the work item a span worked on; an item is handled by the
    agent when a span of the agent carries its id."""
    window: str = Field(default="28d", pattern=_DAYS)
    """The days the scorecard's values are measured over, ending today (UTC)."""
    stale_after: str = Field(default="7d", pattern=_DAYS)
    """Telemetry whose newest record is older than this is not measured (never a pass)."""
    start: date | None = None
    """When the agent went live: the outcome, adoption and workflow paths run from the
    baseline on this day to the target one window later. Default: the agent's first day of
    telemetry."""
    tables: dict[str, str] = Field(default_factory=dict)
    """Extra tables for outcome queries: name → a Parquet or CSV file the data owner
    publishes, relative to the project root (``{csat_survey: data/csat.parquet}``)."""
    max_rows: int = Field(default=5_000_000, ge=1)
    """Most rows an outcome or adoption query may return."""
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds an outcome or adoption query may take."""

    @field_validator("tables")
    @classmethod
    def _table_names(cls, tables: dict[str, str]) -> dict[str, str]:
        for name in tables:
            if not re.fullmatch(_TABLE, name):
                raise ValueError(
                    f"table name {name!r} must be lower-case letters, digits and underscores"
                )
            if name in ("spans", "work_items"):
                raise ValueError(f"table name {name!r} is taken by the telemetry tables")
        return tables

    @property
    def window_days(self) -> int:
        """``window`` in days."""
        return int(self.window[:-1])

    @property
    def stale_days(self) -> int:
        """``stale_after`` in days."""
        return int(self.stale_after[:-1])
