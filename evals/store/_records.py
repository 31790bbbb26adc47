"""The records the store writes and returns: one type per thing it keeps.

- :class:`Output`: what an agent answered to one case (journal, output cache, ``samples``);
- :class:`RunHeader`: what a run evaluates, known when it starts (the journal's first line);
- :class:`RunRecord`: a committed run, its header plus every metric it measured and the gate
  each met (``runs``);
- :class:`MetricRecord`: one metric of a run, with its interval and its gate;
- :class:`SampleRecord`: one case × scorer of a run, with the evidence (``samples``);
- :class:`Decision`: one entry of the audit trail (``decisions``);
- :class:`SpanRecord`: one span of an agent's production traces (``spans``);
- :class:`WorkItemRecord`: one work item of the system of record (``work_items``);
- :class:`IngestRecord`: one committed batch of telemetry, per agent (``ingests``);
- :class:`LabelRecord`: the owner's label of one judged answer (``labels``).

Nothing outside the store reads Parquet rows: everything else works with these.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from evals.contract import Threshold
from evals.dataset import Case, Usage
from evals.gates import GateResult, Verdict
from evals.metrics import MetricValue, fmt_interval, fmt_value

__all__ = [
    "Decision",
    "DecisionKind",
    "IngestKind",
    "IngestRecord",
    "LabelKind",
    "LabelRecord",
    "MetricRecord",
    "Output",
    "Resolver",
    "RunHeader",
    "RunRecord",
    "SampleRecord",
    "Source",
    "SpanRecord",
    "SpanStatus",
    "WorkItemRecord",
    "labels_hash",
]

Source = Literal["golden", "production"]
"""Where a run's cases came from: a golden dataset, or sampled production traces."""


@dataclass(frozen=True)
class Output:
    """What the agent produced for one case, timed; or why it produced nothing."""

    case_id: str
    text: str | None
    contexts: tuple[str, ...] | None = None
    """Passages the agent retrieved for this call; ``None`` means the case's own."""
    latency_s: float | None = None
    """Seconds the call that produced the answer took (the attempt that succeeded)."""
    usage: Usage | None = None
    cost_usd: float | None = None
    model: str | None = None
    error: str | None = None
    """Why there is no output (after any retries); counts against the error budget."""
    attempts: int | None = None
    """Requests it took (retries included); ``None`` for targets that make no requests."""
    usage_counted: bool = False
    """The provider reported no token usage, so ``usage`` was counted locally."""
    tool_calls: tuple[dict[str, Any], ...] | None = None
    """Tool calls the agent made, as it reported them."""
    cached: bool = False
    """Served from the output cache: produced by an earlier run of this exact version on this
    exact case, with that run's latency, usage and cost."""
    retryable: bool = False
    """The call failed for a reason that may pass (rate limit, server error, timeout): a
    resumed run calls the case again instead of keeping the error."""

    def contexts_for(self, case: Case) -> list[str]:
        """The passages this answer should be grounded in."""
        return list(self.contexts) if self.contexts is not None else list(case.contexts)

    def to_record(self) -> dict[str, Any]:
        """JSON-able form, for the output cache and the run journal."""
        record = asdict(self)
        record["usage"] = self.usage.model_dump() if self.usage is not None else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Output:
        """Rebuild an output written by :meth:`to_record`."""
        data = dict(record)
        if data.get("usage") is not None:
            data["usage"] = Usage.model_validate(data["usage"])
        for name in ("contexts", "tool_calls"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)


# --- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRecord:
    """One metric of one run: the number, its interval, and the gate it met (if gated)."""

    metric: str
    value: float | None
    low: float | None
    high: float | None
    n: int
    n_errors: int
    method: str | None
    confidence: float | None
    note: str | None
    gated: bool = False
    direction: Literal["min", "max"] | None = None
    threshold: float | None = None
    verdict: str | None = None
    reason: str | None = None
    rollback: bool = False
    """A failure of this gate rolls the agent back."""

    @classmethod
    def of(cls, name: str, value: MetricValue | None, gate: GateResult | None) -> MetricRecord:
        """Build from what the engine measured and the gate it held the number against."""
        observed = value if value is not None else (gate.observed if gate else None)
        return cls(
            metric=name,
            value=observed.value if observed else None,
            low=observed.low if observed else None,
            high=observed.high if observed else None,
            n=observed.n if observed else 0,
            n_errors=observed.n_errors if observed else 0,
            method=observed.method if observed else None,
            confidence=observed.confidence if observed else None,
            note=observed.note if observed else None,
            gated=gate is not None,
            direction=gate.threshold.direction if gate else None,
            threshold=gate.threshold.bound if gate else None,
            verdict=str(gate.verdict) if gate else None,
            reason=gate.reason if gate else None,
            rollback=gate.rollback if gate else False,
        )

    @property
    def measured(self) -> bool:
        """Whether the run measured this metric (a gate on a missing metric is not)."""
        return self.method is not None or self.value is not None

    def metric_value(self) -> MetricValue:
        """The stored number as the engine's :class:`MetricValue` (to judge other gates)."""
        return MetricValue(
            self.metric,
            self.value,
            self.low,
            self.high,
            self.n,
            self.n_errors,
            self.method or "",
            self.confidence or 0.95,
            self.note or "",
        )

    def threshold_obj(self) -> Threshold | None:
        """The gate's threshold, or ``None`` when the metric was not gated."""
        if self.threshold is None or self.direction is None:
            return None
        return Threshold(**{self.direction: self.threshold})

    def gate(self) -> GateResult | None:
        """The gate this metric met, as the engine's :class:`GateResult`."""
        threshold = self.threshold_obj()
        if threshold is None or self.verdict is None:
            return None
        return GateResult(
            self.metric,
            threshold,
            self.metric_value() if self.measured else None,
            Verdict(self.verdict),
            self.reason or "",
            self.rollback,
        )

    @property
    def threshold_text(self) -> str:
        """``≤ 0.1`` as the contract writes it, or empty when not gated."""
        threshold = self.threshold_obj()
        return str(threshold) if threshold is not None else ""

    @property
    def value_text(self) -> str:
        """The value in its unit (see ``evals.metrics.fmt_value``)."""
        return fmt_value(self.metric, self.value)

    @property
    def interval_text(self) -> str:
        """The interval in its unit (see ``evals.metrics.fmt_interval``)."""
        return fmt_interval(self.metric, self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON output, flow results)."""
        return {
            "metric": self.metric,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "n_errors": self.n_errors,
            "threshold": self.threshold_text or None,
            "verdict": self.verdict,
            "reason": self.reason if self.gated else (self.note or None),
            "rollback": self.rollback,
        }


@dataclass(frozen=True, kw_only=True)
class RunHeader:
    """What a run evaluates, known the moment it starts (a resumed run must match it)."""

    run_id: str
    agent: str
    version: str
    """The version label people and the ledger use."""
    version_hash: str
    dataset: str
    """The dataset as the contract names it."""
    dataset_hash: str
    trigger: str
    """``nightly``, ``promotion``, ``ci`` or ``manual``."""
    level: str
    """The autonomy level whose gates the run is held against."""
    started_at: datetime
    contract: str = ""
    """The contract file, as given when the run started (journal only)."""
    source: Source = "golden"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form of the header fields (the journal's first line)."""
        return {
            name: getattr(self, name).isoformat() if name == "started_at" else getattr(self, name)
            for name in RunHeader.__dataclass_fields__
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunHeader:
        """Parse :meth:`to_dict`'s output."""
        known = {k: v for k, v in data.items() if k in RunHeader.__dataclass_fields__}
        known.setdefault("level", "")
        return RunHeader(**{**known, "started_at": datetime.fromisoformat(data["started_at"])})


@dataclass(frozen=True, kw_only=True)
class RunRecord(RunHeader):
    """A committed run: its header, when it finished, and every metric with its gate."""

    finished_at: datetime | None
    code_version: str | None
    n_cases: int
    n_cached: int = 0
    """Outputs served from the output cache (produced by an earlier run of this version)."""
    n_resumed: int = 0
    """Outputs produced before this run was interrupted and resumed."""
    scoring_hash: str | None = None
    """Everything that shapes the scores besides the outputs."""
    baseline_run_id: str | None = None
    """For a CI candidate: the baseline run it was compared with."""
    verdict: str = "fail"
    """``pass`` when every gate passed, ``fail`` when any failed, else ``inconclusive``."""
    metrics: dict[str, MetricRecord] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    """The grounding judge's check against the owner's labels, when it has labels:
    ``labels_hash``, ``n``, ``judge_fingerprint``, ``threshold``, ``objective`` and whether
    the threshold was ``calibrated`` on them (``evals.labelling.JudgeCheck.provenance``)."""
    production: dict[str, Any] | None = None
    """For a production run: the window, the traces in it, how many were sampled, forced,
    skipped (by reason) and not judged (by suite), the strata, the metrics measured on every
    trace, and the monitoring evidence per gate."""

    @property
    def date(self) -> str:
        """The partition day (UTC) the run's files live under."""
        return self.started_at.astimezone(UTC).strftime("%Y-%m-%d")

    @property
    def gated(self) -> list[MetricRecord]:
        """The metrics this run was gated on, in stored order."""
        return [m for m in self.metrics.values() if m.gated]

    @property
    def failing(self) -> list[MetricRecord]:
        """Gates that did not pass."""
        return [m for m in self.gated if m.verdict != "pass"]

    def gates(self) -> list[GateResult]:
        """Every gate of the run as the engine's :class:`GateResult`, in gate order."""
        return [g for m in self.metrics.values() if (g := m.gate()) is not None]

    def measured(self) -> dict[str, MetricValue]:
        """Every metric the run measured, as the engine's :class:`MetricValue`."""
        return {name: m.metric_value() for name, m in self.metrics.items() if m.measured}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the header, the counts, the verdict and every metric."""
        return {
            **{k: v for k, v in super().to_dict().items() if k != "contract"},
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "code_version": self.code_version,
            "cases": self.n_cases,
            "n_cached": self.n_cached,
            "n_resumed": self.n_resumed,
            "baseline_run_id": self.baseline_run_id,
            "verdict": self.verdict,
            "metrics": [m.to_dict() for m in self.metrics.values()],
            "production": self.production,
        }


# --- samples ----------------------------------------------------------------------------------


def _evidence(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"raw": text}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


@dataclass(frozen=True)
class SampleRecord:
    """One case × scorer of a run (or the call alone, when no scorer ran)."""

    run_id: str
    case_id: str
    metric: str
    """The scorer's name (``faithfulness``, ``hallucination``, ``policy_violation`` …)."""
    value: float | None
    passed: bool | None
    explanation: str
    evidence: Any = None
    """Parsed evidence: claims for grounding scorers, violations for the policy scorer."""
    output: str | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    error: str | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    attempts: int | None = None
    usage_counted: bool = False
    cached: bool = False
    tool_calls: Any = None
    """Parsed tool calls the agent reported, if any."""

    def to_row(self) -> dict[str, Any]:
        """The ``samples`` row (evidence and tool calls as JSON text)."""
        row = asdict(self)
        row["tags"] = list(self.tags)
        row["evidence"] = (
            json.dumps(self.evidence, default=str) if self.evidence not in (None, {}) else None
        )
        row["tool_calls"] = json.dumps(self.tool_calls, default=str) if self.tool_calls else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SampleRecord:
        """Rebuild from a ``samples`` row."""
        return cls(
            run_id=row["run_id"],
            case_id=row["case_id"],
            metric=row["metric"],
            value=_number(row.get("value")),
            passed=row.get("passed"),
            explanation=row.get("explanation") or "",
            evidence=_evidence(row.get("evidence")),
            output=row.get("output"),
            latency_s=_number(row.get("latency_s")),
            cost_usd=_number(row.get("cost_usd")),
            error=row.get("error"),
            tags=tuple(row.get("tags") or ()),
            version=row.get("version"),
            prompt_tokens=row.get("prompt_tokens"),
            completion_tokens=row.get("completion_tokens"),
            model=row.get("model"),
            attempts=row.get("attempts"),
            usage_counted=bool(row.get("usage_counted")),
            cached=bool(row.get("cached")),
            tool_calls=_evidence(row.get("tool_calls")),
        )


# --- decisions --------------------------------------------------------------------------------

DecisionKind = Literal[
    "escalate",
    "recover",
    "rollback",
    "rollback_refused",
    "promote",
    "promotion_failed",
    "promotion_rejected",
    "demote",
    "deploy",
]


@dataclass(frozen=True)
class Decision:
    """One entry of the audit trail in the ``decisions`` table."""

    agent: str
    kind: DecisionKind
    reason: str
    """Why, with the numbers."""
    actor: str
    """Who or what decided: ``nightly flow``, ``impactgate rollback``, an approver."""
    run_id: str | None = None
    """The run whose evidence caused it."""
    metrics: list[str] = field(default_factory=list)
    """Gated metrics involved."""
    level_before: str | None = None
    level_after: str | None = None
    version_before: str | None = None
    version_after: str | None = None
    approved_by: str | None = None
    notifications: list[str] = field(default_factory=list)
    """Delivery result per channel (never the secret part of a URL)."""
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    decision_id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def action_failed(self) -> str | None:
        """Why the action did not fully happen (a rollback hook that failed), or ``None``."""
        failed = self.details.get("action_failed")
        return str(failed) if failed else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (flow results, JSON output); the sent notification payload left out."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["details"] = {k: v for k, v in self.details.items() if k != "payload"}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Rebuild from :meth:`to_dict`'s output."""
        at = data.get("at")
        return cls(
            **{k: v for k, v in data.items() if k != "at"},
            at=datetime.fromisoformat(at) if isinstance(at, str) else (at or datetime.now(UTC)),
        )

    def to_row(self) -> dict[str, Any]:
        """The ``decisions`` row (details as JSON text)."""
        row = self.to_dict()
        row.pop("agent")
        row["at"] = self.at
        row["details"] = json.dumps(row["details"], default=str) if row["details"] else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Decision:
        """Rebuild from a ``decisions`` row (with its ``agent`` partition column)."""
        details = _evidence(row.get("details"))
        return cls(
            agent=row["agent"],
            kind=row.get("kind") or "escalate",
            reason=row.get("reason") or "",
            actor=row.get("actor") or "",
            run_id=row.get("run_id"),
            metrics=list(row.get("metrics") or ()),
            level_before=row.get("level_before"),
            level_after=row.get("level_after"),
            version_before=row.get("version_before"),
            version_after=row.get("version_after"),
            approved_by=row.get("approved_by"),
            notifications=list(row.get("notifications") or ()),
            details=details if isinstance(details, dict) else {},
            at=row["at"],
            decision_id=row.get("decision_id") or "",
        )


# --- production telemetry ---------------------------------------------------------------------

SpanStatus = Literal["unset", "ok", "error"]
"""A span's OpenTelemetry status code, in words."""

Resolver = Literal["agent", "human"]
"""Who resolved a work item: the agent, or a person."""

IngestKind = Literal["spans", "work_items"]
"""What a batch of telemetry holds."""


def _json_text(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False, default=str) if value else None


def _json_list(text: str | None) -> list[Any]:
    parsed = _evidence(text)
    return parsed if isinstance(parsed, list) else []


def _json_dict(text: str | None) -> dict[str, Any]:
    parsed = _evidence(text)
    return parsed if isinstance(parsed, dict) else {}


def _dated_row(record: Any, *lists: str) -> dict[str, Any]:
    """A per-agent, per-day record's row: ``lists`` (tuples) as lists, ``date`` added."""
    row = asdict(record)
    for name in lists:
        row[name] = list(row[name])
    row["date"] = record.date
    return row


def _row_fields(
    cls: Any, row: Mapping[str, Any], *tuples: str, empty: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A row's value for each field of the dataclass ``cls`` (``None`` when missing).

    ``tuples`` become tuples; a field of ``empty`` takes its value there when the row's is empty.
    """
    data: dict[str, Any] = {k: row.get(k) for k in cls.__dataclass_fields__}
    for name in tuples:
        data[name] = tuple(row.get(name) or ())
    for name, value in (empty or {}).items():
        data[name] = row.get(name) or value
    return data


@dataclass(frozen=True, kw_only=True)
class SpanRecord:
    """One span of an agent's production traces, as stored (content already masked).

    Keyed by ``(trace_id, span_id)``: the same span ingested twice is read back once. See
    docs/design/telemetry.md for where each field comes from.
    """

    trace_id: str
    """32 lower-case hex digits."""
    span_id: str
    """16 lower-case hex digits."""
    parent_span_id: str | None
    agent: str
    """``gen_ai.agent.name``, else the resource's ``service.name`` (see the design note)."""
    name: str
    kind: str
    """``internal``, ``server``, ``client``, ``producer``, ``consumer`` or ``unspecified``."""
    start: datetime
    end: datetime
    duration_s: float
    status: SpanStatus = "unset"
    status_message: str | None = None
    error_type: str | None = None
    """``error.type``, else the type of a recorded exception when the span failed."""
    service: str | None = None
    """The resource's ``service.name``."""
    operation: str | None = None
    """``gen_ai.operation.name`` (``chat``, ``execute_tool``, ``invoke_agent``, ``retrieval``
    …), or the OpenInference span kind in those words."""
    openinference_kind: str | None = None
    """``openinference.span.kind`` as sent (``LLM``, ``TOOL``, ``AGENT``, ``RETRIEVER``,
    ``CHAIN`` …)."""
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    conversation_id: str | None = None
    tool_name: str | None = None
    tool_arguments: str | None = None
    """The tool call's arguments as sent (usually JSON text)."""
    input_text: str | None = None
    """What the operation was asked: the last user message, the query, the agent's input."""
    output_text: str | None = None
    """What it answered: the first choice, the tool's result, the agent's output."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Every input and output message, ``{"role", "content"}`` in order."""
    documents: tuple[str, ...] = ()
    """Retrieved documents' contents."""
    work_item_id: str | None = None
    """The work item this span worked on (the link attribute, see ``WorkItemMapping``)."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Every other span attribute."""
    resource: dict[str, Any] = field(default_factory=dict)
    """The resource's attributes."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Span events other than the message events read into the fields above."""
    batch_id: str = ""
    """The ingest batch that stored this row."""
    ingested_at: datetime | None = None

    @property
    def date(self) -> str:
        """The partition day (UTC) of the span's start."""
        return self.start.astimezone(UTC).strftime("%Y-%m-%d")

    @property
    def failed(self) -> bool:
        """The span ended in an error (status ``error`` or an ``error.type``)."""
        return self.status == "error" or self.error_type is not None

    def to_row(self) -> dict[str, Any]:
        """The ``spans`` row (JSON fields as text; ``agent`` and ``date`` included)."""
        row = _dated_row(self, "documents")
        for name in ("messages", "attributes", "resource", "events"):
            row[name] = _json_text(row[name])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SpanRecord:
        """Rebuild from a ``spans`` row (with its ``agent`` partition column)."""
        data = _row_fields(cls, row, "documents", empty={"status": "unset", "batch_id": ""})
        data["messages"] = _json_list(row.get("messages"))
        data["events"] = _json_list(row.get("events"))
        data["attributes"] = _json_dict(row.get("attributes"))
        data["resource"] = _json_dict(row.get("resource"))
        data["duration_s"] = _number(row.get("duration_s")) or 0.0
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class WorkItemRecord:
    """One work item (a ticket, a case) from the system of record, as last exported.

    Keyed by ``work_item_id``; a later export of the same item replaces it (the latest
    ``updated_at``, then the latest ingest, then the later row of a file wins).
    """

    work_item_id: str
    agent: str
    """The agent whose workflow slice the item belongs to."""
    opened_at: datetime
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    """When the source last changed the item, if the export says."""
    resolved_by: Resolver | None = None
    escalated: bool | None = None
    """Handed to a person."""
    reopened: bool | None = None
    """Reopened or redone after it was closed."""
    outcomes: dict[str, Any] = field(default_factory=dict)
    """Outcome fields by name (CSAT, converted, refund amount …)."""
    seq: int = 0
    """The row's position in its file (a later row of the same item wins)."""
    batch_id: str = ""
    ingested_at: datetime | None = None

    @property
    def date(self) -> str:
        """The partition day (UTC) the item was opened."""
        return self.opened_at.astimezone(UTC).strftime("%Y-%m-%d")

    @property
    def cycle_time_h(self) -> float | None:
        """Hours from opened to closed, or ``None`` while open."""
        if self.closed_at is None:
            return None
        return (self.closed_at - self.opened_at).total_seconds() / 3600

    def to_row(self) -> dict[str, Any]:
        """The ``work_items`` row (outcomes as JSON text; ``agent`` and ``date`` included)."""
        row = _dated_row(self)
        row["outcomes"] = _json_text(self.outcomes)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkItemRecord:
        """Rebuild from a ``work_items`` row (with its ``agent`` partition column)."""
        data = _row_fields(cls, row, empty={"seq": 0, "batch_id": ""})
        data["outcomes"] = _json_dict(row.get("outcomes"))
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class IngestRecord:
    """One agent's share of a committed telemetry batch (the ``ingests`` table).

    A batch is visible once it has a record for every agent it wrote (``agents``); its
    files' rows are read only then, so a crash mid-batch leaves nothing half-written.
    """

    batch_id: str
    agent: str
    kind: IngestKind
    source: str
    """The file as given, or ``otlp-http`` for the receiver."""
    format: str
    sha256: str | None
    """The file's content hash (``None`` for the receiver): the same file is ingested once."""
    complete: bool
    """The file's last batch (a large file is written in several)."""
    rows: int
    """Rows this batch wrote for this agent."""
    rejected: int
    """Records of the batch (all agents) that were bad and left out."""
    agents: tuple[str, ...]
    at: datetime

    @property
    def date(self) -> str:
        """The partition day (UTC) of the ingest."""
        return self.at.astimezone(UTC).strftime("%Y-%m-%d")

    def to_row(self) -> dict[str, Any]:
        """The ``ingests`` row (``agent`` and ``date`` included)."""
        return _dated_row(self, "agents")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> IngestRecord:
        """Rebuild from an ``ingests`` row."""
        data = _row_fields(cls, row, "agents", empty={"rows": 0, "rejected": 0})
        data["complete"] = bool(row.get("complete"))
        return cls(**data)


# --- labels -----------------------------------------------------------------------------------

LabelKind = Literal["grounding", "policy"]
"""What a label judges: an answer's support by its passages, or a policy finding."""


@dataclass(frozen=True)
class LabelRecord:
    """One owner's label of one judged item (a row of the ``labels`` table).

    A label says whether one answer really is unsupported (``grounding``) or really breaks a
    policy (``policy``): 1 yes, 0 no. Read back with the newest label of an item winning, so a
    relabelling round supersedes the old one without rewriting anything (docs/calibration.md).
    """

    item_id: str
    agent: str
    kind: LabelKind
    run_id: str
    case_id: str
    version: str | None
    question: str
    contexts: tuple[str, ...]
    """The passages the answer was judged against (masked as the run stored its outputs)."""
    answer: str
    """The answer as the run stored it (masked)."""
    judge: str
    """The judge whose verdict was shown (``offline``, ``policy`` …)."""
    judge_score: float | None
    """Grounding: the answer's support score at export; policy: ``None``."""
    judge_flag: bool | None
    """Whether the judge flagged the item (unsupported, a violation) at export."""
    label: int
    """1: the owner says it is unsupported / a real violation; 0: it is fine."""
    note: str
    labelled_by: str
    labelled_at: datetime
    batch_id: str
    source: str
    """The label file as given to ``impactgate labels import``."""

    @property
    def date(self) -> str:
        """The partition day (UTC) of the import."""
        return self.labelled_at.astimezone(UTC).strftime("%Y-%m-%d")

    def same_label(self, other: LabelRecord) -> bool:
        """Whether two records say the same about the same item (an import changes nothing)."""
        return (self.item_id, self.label, self.note) == (other.item_id, other.label, other.note)

    def to_row(self) -> dict[str, Any]:
        """The ``labels`` row (``agent`` and ``date`` included)."""
        return _dated_row(self, "contexts")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LabelRecord:
        """Rebuild from a ``labels`` row."""
        data = _row_fields(cls, row, "contexts", empty={"note": "", "question": "", "answer": ""})
        data["label"] = int(row["label"])
        return cls(**data)


def labels_hash(labels: list[LabelRecord]) -> str:
    """A short hash of what a set of labels says (item, answer, contexts, label), in any order.

    Two calibrations with the same hash were fitted on the same labels.
    """
    digest = hashlib.sha256()
    for record in sorted(labels, key=lambda r: r.item_id):
        digest.update(
            json.dumps(
                [record.item_id, record.answer, list(record.contexts), record.label]
            ).encode()
        )
        digest.update(b"\n")
    return digest.hexdigest()[:16]
