"""Spans as columns: decoded OTLP spans mapped to the ``spans`` table, masked, as Arrow.

:class:`SpanTable` collects spans one by one (from OTLP JSON or protobuf, see ``_otlp.py``),
maps each span's attributes to the table's fields (``_names.py``, ``_content.py``), and
builds the Arrow table in one go: the agent of each span resolved, every text that can hold
personal data masked once per distinct text with that agent's rules, JSON columns encoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from evals.store import SPANS_SCHEMA
from evals.telemetry._content import Content, Event, extract_content
from evals.telemetry._mask import MaskSlot, TelemetryMasker
from evals.telemetry._names import (
    AGENT_NAME,
    CONVERSATION_ID,
    ERROR_TYPE,
    INPUT_TOKENS,
    MODEL,
    NOT_PERSONAL,
    OPENINFERENCE_OPERATIONS,
    OPENINFERENCE_SPAN_KIND,
    OPERATION_NAME,
    OUTPUT_TOKENS,
    PROVIDER,
    SERVICE_NAME,
    TOOL_NAME,
    WORK_ITEM_ATTRIBUTE,
)

__all__ = ["Resource", "SpanTable", "agent_name"]

Warn = Callable[[str, str], None]

_AGENT_OK = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_DAY_NS = 86_400 * 10**9


def agent_name(name: str) -> str:
    """A name as a contract's agent name: ``Billing Assistant`` → ``billing-assistant``.

    Contracts name agents with lower-case letters, digits and dashes (and partitions are
    folders), so anything else is folded to that; an empty result is ``unknown``.
    """
    if _AGENT_OK.match(name):
        return name
    slug = _NOT_SLUG.sub("-", name.lower()).strip("-")[:63].strip("-")
    return slug or "unknown"


@dataclass
class Resource:
    """The resource a batch of spans came from (shared by its spans)."""

    attributes: dict[str, Any]
    service: str | None = None
    agent: str | None = None
    """``gen_ai.agent.name`` on the resource, if set."""
    work_item: str | None = None
    masked: dict[int, bytes | None] = field(default_factory=dict)
    """The attributes as masked JSON, per mask slot (computed once)."""

    @classmethod
    def of(cls, attributes: dict[str, Any], work_item_attribute: str) -> Resource:
        """A resource from its decoded attributes."""
        service = attributes.get(SERVICE_NAME)
        agent = attributes.get(AGENT_NAME[0])
        work_item = attributes.get(work_item_attribute)
        return cls(
            attributes,
            str(service) if service is not None else None,
            str(agent) if agent is not None else None,
            str(work_item) if work_item is not None else None,
        )


def _first(attrs: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in attrs:
            return attrs.pop(name)
    return None


def _string(value: Any, name: str, warn: Warn) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    warn(name, f"expected text, got {type(value).__name__}; left out")
    return None


def _count(attrs: dict[str, Any], names: tuple[str, ...], warn: Warn) -> int | None:
    for name in names:
        if name in attrs:
            value = attrs.pop(name)
            if isinstance(value, bool):
                break
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and value.strip().isdigit():
                return int(value)
            warn(name, f"expected a whole number of tokens, got {value!r}; left out")
            return None
    return None


class SpanTable:
    """Decoded spans, mapped to the ``spans`` columns, waiting to be masked and stored.

    Args:
        work_item_attribute: the attribute that links a span to its work item.
    """

    def __init__(self, work_item_attribute: str = WORK_ITEM_ATTRIBUTE) -> None:
        self.work_item_attribute = work_item_attribute
        self._rows: list[tuple[Any, ...]] = []
        self._seen: set[tuple[str, str]] = set()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        resource: Resource,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        name: str,
        kind: str,
        start_ns: int,
        end_ns: int,
        status: str,
        status_message: str | None,
        attrs: dict[str, Any],
        events: list[Event],
        warn: Warn,
    ) -> None:
        """Map one decoded span (its ``attrs`` dict is consumed) and keep it.

        The same ``(trace_id, span_id)`` twice in one table is kept once (the first).
        """
        key = (trace_id, span_id)
        if key in self._seen:
            self.duplicates += 1
            return
        explicit = _string(_first(attrs, AGENT_NAME), "gen_ai.agent.name", warn) or None
        oi_kind = _string(attrs.pop(OPENINFERENCE_SPAN_KIND, None), OPENINFERENCE_SPAN_KIND, warn)
        operation = _string(attrs.pop(OPERATION_NAME, None), OPERATION_NAME, warn)
        if operation is None and oi_kind is not None:
            operation = OPENINFERENCE_OPERATIONS.get(oi_kind.upper(), oi_kind.lower())
        model = _string(_first(attrs, MODEL), "gen_ai.response.model", warn)
        provider = _string(_first(attrs, PROVIDER), "gen_ai.provider.name", warn)
        input_tokens = _count(attrs, INPUT_TOKENS, warn)
        output_tokens = _count(attrs, OUTPUT_TOKENS, warn)
        conversation = _string(_first(attrs, CONVERSATION_ID), "gen_ai.conversation.id", warn)
        tool_name = _string(_first(attrs, TOOL_NAME), "gen_ai.tool.name", warn)
        error_type = _string(attrs.pop(ERROR_TYPE, None), ERROR_TYPE, warn)
        work_item = _string(
            attrs.pop(self.work_item_attribute, None), self.work_item_attribute, warn
        )
        content, events = extract_content(attrs, events, oi_kind, warn)
        if status == "error":
            for event_name, _, event_attrs in events:
                if event_name == "exception":
                    if error_type is None and event_attrs.get("exception.type") is not None:
                        error_type = str(event_attrs["exception.type"])
                    if status_message is None and event_attrs.get("exception.message") is not None:
                        status_message = str(event_attrs["exception.message"])
                    break
        self._seen.add(key)
        self._rows.append(
            (
                trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,
                status_message or None, error_type, operation, oi_kind, model, provider,
                input_tokens, output_tokens, conversation, tool_name, content,
                work_item or resource.work_item, attrs, events, resource, explicit,
            )
        )  # fmt: skip

    # -- building ----------------------------------------------------------------------------

    def _inherited(self, column: int) -> list[str | None]:
        """A value each span has, or takes from its nearest ancestor, or from its trace.

        Spans of one trace usually name the agent (and the work item) once, on the agent's
        own span; the model calls and tool calls under it inherit them. Only spans in this
        table are looked at; ``None`` when no span of the trace here has the value.
        """
        rows = self._rows
        by_trace: dict[str, str] = {}
        mixed: set[str] = set()  # traces naming two values: there the nearest ancestor decides
        for row in rows:
            value = row[column]
            if value is not None:
                known = by_trace.setdefault(row[0], value)
                if known != value:
                    mixed.add(row[0])
        resolved: list[str | None] = [
            row[column] if row[column] is not None else by_trace.get(row[0]) for row in rows
        ]
        if not mixed:
            return resolved
        index = {(row[0], row[1]): i for i, row in enumerate(rows) if row[0] in mixed}
        for i, row in enumerate(rows):
            if row[column] is not None or row[0] not in mixed:
                continue
            parent = row[2]
            seen = {i}
            while parent is not None:
                j = index.get((row[0], parent))
                if j is None or j in seen:
                    break
                if rows[j][column] is not None:
                    resolved[i] = rows[j][column]
                    break
                seen.add(j)
                parent = rows[j][2]
        return resolved

    def _agents(self) -> list[str]:
        """Each span's agent.

        Its own ``gen_ai.agent.name``, else its nearest ancestor's, else the one named in its
        trace, else the resource's ``gen_ai.agent.name`` or ``service.name``; folded to a
        contract's agent name (:func:`agent_name`).
        """
        names: dict[str, str] = {}
        agents = []
        for row, found in zip(self._rows, self._inherited(23), strict=True):
            resource: Resource = row[22]
            name = found or resource.agent or resource.service or "unknown"
            agents.append(names.get(name) or names.setdefault(name, agent_name(name)))
        return agents

    def to_arrow(self, masking: TelemetryMasker) -> pa.Table:
        """The ``spans`` rows (with ``agent`` and ``date``), masked, as one Arrow table."""
        agents = self._agents()
        rows = self._rows
        slots: dict[str, MaskSlot] = {}
        groups: dict[int, tuple[MaskSlot, list[int]]] = {}
        for i, agent in enumerate(agents):
            slot = slots.get(agent)
            if slot is None:
                slot = slots[agent] = masking.for_agent(agent)
            groups.setdefault(id(slot), (slot, []))[1].append(i)

        n = len(rows)
        names: list[str | None] = [None] * n
        status_messages: list[str | None] = [None] * n
        inputs: list[str | None] = [None] * n
        outputs: list[str | None] = [None] * n
        arguments: list[str | None] = [None] * n
        messages: list[bytes | None] = [None] * n
        documents: list[list[str] | None] = [None] * n
        attributes: list[bytes | None] = [None] * n
        resources: list[bytes | None] = [None] * n
        events: list[bytes | None] = [None] * n
        dumps = orjson.dumps
        for slot, members in groups.values():
            keep = slot.mode != "none"
            texts = [_row_texts(rows[i], keep) for i in members] if slot.active else []
            table = slot.mask(t for row_texts in texts for t in row_texts) if texts else {}
            get = table.get
            for position, i in enumerate(members):
                row = rows[i]
                content: Content = row[18]
                if table and not table.keys().isdisjoint(texts[position]):
                    names[i] = get(row[3], row[3])
                    status_messages[i] = _masked(row[8], get)
                    if keep:
                        inputs[i] = _masked(content.input_text, get)
                        outputs[i] = _masked(content.output_text, get)
                        arguments[i] = _masked(content.tool_arguments, get)
                        if content.messages:
                            messages[i] = dumps(_remask(content.messages, get))
                        documents[i] = [get(d, d) for d in content.documents]
                    if row[20]:
                        attributes[i] = dumps(_attributes(row[20], get), default=str)
                    if row[21]:
                        events[i] = dumps(_events(row[21], get), default=str)
                else:  # nothing in this span to mask: its values as they are
                    names[i] = row[3]
                    status_messages[i] = row[8]
                    if keep:
                        inputs[i] = content.input_text
                        outputs[i] = content.output_text
                        arguments[i] = content.tool_arguments
                        if content.messages:
                            messages[i] = dumps(content.messages)
                        documents[i] = content.documents
                    if row[20]:
                        attributes[i] = dumps(row[20], default=str)
                    if row[21]:
                        events[i] = dumps(_events(row[21], None), default=str)
                resource: Resource = row[22]
                cached = resource.masked.get(id(slot), b"")
                if cached == b"":
                    cached = resource.masked[id(slot)] = _resource_json(resource, slot)
                resources[i] = cached

        columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 24
        starts, ends = columns[5], columns[6]
        days: dict[int, str] = {}
        dates = []
        for ns in starts:
            day = ns // _DAY_NS
            text = days.get(day)
            if text is None:
                text = days[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
            dates.append(text)
        json = pa.binary()
        string = pa.string()
        arrays = {
            "trace_id": pa.array(columns[0], string),
            "span_id": pa.array(columns[1], string),
            "parent_span_id": pa.array(columns[2], string),
            "name": pa.array(names, string),
            "kind": pa.array(columns[4], string),
            "start": pa.array([s // 1000 for s in starts], pa.timestamp("us", tz="UTC")),
            "end": pa.array([e // 1000 for e in ends], pa.timestamp("us", tz="UTC")),
            "duration_s": pa.array(
                [(e - s) / 1e9 for s, e in zip(starts, ends, strict=True)], pa.float64()
            ),
            "status": pa.array(columns[7], string),
            "status_message": pa.array(status_messages, string),
            "error_type": pa.array(columns[9], string),
            "service": pa.array([r.service for r in columns[22]], string),
            "operation": pa.array(columns[10], string),
            "openinference_kind": pa.array(columns[11], string),
            "model": pa.array(columns[12], string),
            "provider": pa.array(columns[13], string),
            "input_tokens": pa.array(columns[14], pa.int64()),
            "output_tokens": pa.array(columns[15], pa.int64()),
            "conversation_id": pa.array(columns[16], string),
            "tool_name": pa.array(columns[17], string),
            "tool_arguments": pa.array(arguments, string),
            "input_text": pa.array(inputs, string),
            "output_text": pa.array(outputs, string),
            "messages": pa.array(messages, json).cast(string),
            "documents": pa.array(documents, pa.list_(string)),
            "work_item_id": pa.array(self._inherited(19), string),
            "attributes": pa.array(attributes, json).cast(string),
            "resource": pa.array(resources, json).cast(string),
            "events": pa.array(events, json).cast(string),
            "agent": pa.array(agents, string),
            "date": pa.array(dates, string),
        }
        order = [f.name for f in SPANS_SCHEMA if f.name in arrays] + ["agent", "date"]
        return pa.table([arrays[name] for name in order], names=order)

    def clear(self) -> None:
        """Forget the spans collected (after they were stored)."""
        self._rows.clear()
        self._seen.clear()
        self.duplicates = 0


def _masked(text: str | None, get: Callable[[str, str], str]) -> str | None:
    return get(text, text) if text else text


def _collect(value: Any, into: list[str]) -> None:
    """Every string inside a decoded value (lists and dicts), into ``into``."""
    if type(value) is str:
        into.append(value)
    elif type(value) is dict:
        for item in value.values():
            _collect(item, into)
    elif type(value) is list or type(value) is tuple:
        for item in value:
            _collect(item, into)


def _row_texts(row: tuple[Any, ...], keep: bool) -> list[str]:
    """Every text of one span that can hold personal data (what masking reads)."""
    texts = [row[3]]
    append = texts.append
    if row[8]:
        append(row[8])
    if keep:
        content: Content = row[18]
        if content.input_text:
            append(content.input_text)
        if content.output_text:
            append(content.output_text)
        if content.tool_arguments:
            append(content.tool_arguments)
        texts.extend(content.documents)
        for message in content.messages:
            if message.get("content"):
                append(message["content"])
            for call in message.get("tool_calls") or ():
                if call.get("arguments"):
                    append(call["arguments"])
    for key, value in row[20].items():
        if key in NOT_PERSONAL:
            continue
        if type(value) is str:
            append(value)
        elif type(value) is list or type(value) is dict:
            _collect(value, texts)
    for event in row[21]:
        _collect(event[2], texts)
    return texts


def _remask(value: Any, get: Callable[[str, str], str]) -> Any:
    if type(value) is str:
        return get(value, value)
    if type(value) is dict:
        return {k: _remask(v, get) for k, v in value.items()}
    if type(value) is list or type(value) is tuple:
        return [_remask(v, get) for v in value]
    return value


def _attributes(attrs: dict[str, Any], get: Callable[[str, str], str]) -> dict[str, Any]:
    return {k: v if k in NOT_PERSONAL else _remask(v, get) for k, v in attrs.items()}


def _events(events: list[Event], get: Callable[[str, str], str] | None) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "time_unix_nano": at,
            "attributes": _remask(attrs, get) if get is not None else attrs,
        }
        for name, at, attrs in events
    ]


def _resource_json(resource: Resource, slot: MaskSlot) -> bytes | None:
    """The resource's attributes as JSON, masked with the slot's rules (once per resource)."""
    if not resource.attributes:
        return None
    if not slot.active:
        return orjson.dumps(resource.attributes, default=str)
    texts: list[str] = []
    _collect({k: v for k, v in resource.attributes.items() if k not in NOT_PERSONAL}, texts)
    table = slot.mask(texts)
    return orjson.dumps(_attributes(resource.attributes, table.get), default=str)
