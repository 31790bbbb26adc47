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
import pyarrow.compute as pc

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
_TIMESTAMP = pa.timestamp("us", tz="UTC")


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


def _string(value: Any, name: str, warn: Warn) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    warn(name, f"expected text, got {type(value).__name__}; left out")
    return None


def _count(value: Any, name: str, warn: Warn) -> int | None:
    """A token count as read from attribute ``name`` (``None`` when it was not given)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    warn(name, f"expected a whole number of tokens, got {value!r}; left out")
    return None


_FIELDS: tuple[tuple[str, ...], ...] = (
    AGENT_NAME,
    (OPENINFERENCE_SPAN_KIND,),
    (OPERATION_NAME,),
    MODEL,
    PROVIDER,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    CONVERSATION_ID,
    TOOL_NAME,
    (ERROR_TYPE,),
)
"""The attributes each mapped field is read from, first name present first; the work item's
attribute (configurable) is the last field."""
_AGENT, _OI_KIND, _OPERATION, _MODEL, _PROVIDER, _INPUT, _OUTPUT, _CONVERSATION, _TOOL = range(9)
_ERROR, _WORK_ITEM = 9, 10

# The fields of a kept span (SpanTable._rows), in order.
_TRACE, _SPAN, _PARENT, _NAME, _KIND, _START, _END, _STATUS, _MESSAGE = range(9)
_ERROR_TYPE, _OPERATION_COL, _OI_KIND_COL, _MODEL_COL, _PROVIDER_COL = range(9, 14)
_INPUT_TOKENS, _OUTPUT_TOKENS, _CONVERSATION_COL, _TOOL_COL, _CONTENT = range(14, 19)
_WORK_ITEM_COL, _ATTRS, _EVENTS, _RESOURCE, _EXPLICIT_AGENT = range(19, 24)
_MESSAGES_JSON, _ATTRS_JSON, _EVENTS_JSON, _HEAD_TEXTS, _CONTENT_TEXTS, _TAIL_TEXTS = range(24, 30)
_COLUMNS = 30


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
        self._fields = (*_FIELDS, (work_item_attribute,))
        self._mapped = frozenset(name for names in self._fields for name in names)
        # Each name's place in reading order: a field reads its names in order, and a name
        # given to two fields (a work-item attribute that is also a mapped name) is read
        # field by field (``_read_fields``).
        self._order = {
            name: (field, rank)
            for field, names in reversed(list(enumerate(self._fields)))
            for rank, name in reversed(list(enumerate(names)))
        }
        self._shared_names = len(self._order) < sum(len(names) for names in self._fields)

    def __len__(self) -> int:
        return len(self._rows)

    def _read_fields(self, attrs: dict[str, Any]) -> tuple[list[Any], list[str]]:
        """Take each mapped field's value out of ``attrs``: the first of its names present.

        Returns each field's value (``None`` if absent) and the attribute it was read from.
        """
        values: list[Any] = [None] * len(self._fields)
        used = [""] * len(self._fields)
        present = self._mapped.intersection(attrs)
        if not present:
            return values, used
        if self._shared_names:
            for field, names in enumerate(self._fields):
                for name in names:
                    if name in attrs:
                        values[field], used[field] = attrs.pop(name), name
                        break
            return values, used
        order = self._order
        for name in sorted(present, key=order.__getitem__) if len(present) > 1 else present:
            field = order[name][0]
            if not used[field]:
                values[field], used[field] = attrs.pop(name), name
        return values, used

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

        Each field is read from the first of its attribute names present, and that name is
        taken out of ``attrs`` (the others stay). The same ``(trace_id, span_id)`` twice in one
        table is kept once (the first).
        """
        key = (trace_id, span_id)
        if key in self._seen:
            self.duplicates += 1
            return
        values, used = self._read_fields(attrs)
        value = values[_AGENT]
        explicit = (
            value if type(value) is str else _string(value, "gen_ai.agent.name", warn)
        ) or None
        value = values[_OI_KIND]
        oi_kind = value if type(value) is str else _string(value, OPENINFERENCE_SPAN_KIND, warn)
        value = values[_OPERATION]
        operation = value if type(value) is str else _string(value, OPERATION_NAME, warn)
        if operation is None and oi_kind is not None:
            operation = OPENINFERENCE_OPERATIONS.get(oi_kind.upper(), oi_kind.lower())
        value = values[_MODEL]
        model = value if type(value) is str else _string(value, "gen_ai.response.model", warn)
        value = values[_PROVIDER]
        provider = value if type(value) is str else _string(value, "gen_ai.provider.name", warn)
        value = values[_INPUT]
        input_tokens = value if type(value) is int else _count(value, used[_INPUT], warn)
        value = values[_OUTPUT]
        output_tokens = value if type(value) is int else _count(value, used[_OUTPUT], warn)
        value = values[_CONVERSATION]
        conversation = (
            value if type(value) is str else _string(value, "gen_ai.conversation.id", warn)
        )
        value = values[_TOOL]
        tool_name = value if type(value) is str else _string(value, "gen_ai.tool.name", warn)
        value = values[_ERROR]
        error_type = value if type(value) is str else _string(value, ERROR_TYPE, warn)
        value = values[_WORK_ITEM]
        work_item = value if type(value) is str else _string(value, self.work_item_attribute, warn)
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
        status_message = status_message or None
        # The span as JSON and the texts masking reads are taken now, while the decoded values
        # are fresh in memory: to_arrow revisits only the spans that masking changes.
        dumps = orjson.dumps
        head = [name, status_message] if status_message else [name]
        tail: list[str] = []
        for attribute, value in attrs.items():
            if attribute in NOT_PERSONAL:
                continue
            if type(value) is str:
                tail.append(value)
            elif type(value) is list or type(value) is dict:
                _collect(value, tail)
        for event in events:
            _collect(event[2], tail)
        self._rows.append(
            (
                trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,
                status_message, error_type, operation, oi_kind, model, provider,
                input_tokens, output_tokens, conversation, tool_name, content,
                work_item or resource.work_item, attrs, events, resource, explicit,
                dumps(content.messages) if content.messages else None,
                dumps(attrs, default=str) if attrs else None,
                dumps(_events(events, None), default=str) if events else None,
                head, _content_texts(content), tail,
            )
        )  # fmt: skip

    # -- building ----------------------------------------------------------------------------

    def _inherited(self, cols: list[tuple[Any, ...]], column: int) -> list[str | None]:
        """A value each span has, or takes from its nearest ancestor, or from its trace.

        Spans of one trace usually name the agent (and the work item) once, on the agent's
        own span; the model calls and tool calls under it inherit them. Only spans in this
        table are looked at; ``None`` when no span of the trace here has the value.
        """
        values, traces, parents = cols[column], cols[_TRACE], cols[_PARENT]
        by_trace: dict[str, str] = {}
        mixed: set[str] = set()  # traces naming two values: there the nearest ancestor decides
        for trace, value in zip(traces, values, strict=True):
            if value is not None:
                known = by_trace.setdefault(trace, value)
                if known != value:
                    mixed.add(trace)
        resolved: list[str | None] = [
            value if value is not None else by_trace.get(trace)
            for trace, value in zip(traces, values, strict=True)
        ]
        if not mixed:
            return resolved
        spans = cols[_SPAN]
        index = {
            (t, s): i for i, (t, s) in enumerate(zip(traces, spans, strict=True)) if t in mixed
        }
        for i, trace in enumerate(traces):
            if values[i] is not None or trace not in mixed:
                continue
            parent = parents[i]
            seen = {i}
            while parent is not None:
                j = index.get((trace, parent))
                if j is None or j in seen:
                    break
                if values[j] is not None:
                    resolved[i] = values[j]
                    break
                seen.add(j)
                parent = parents[j]
        return resolved

    def _agents(self, cols: list[tuple[Any, ...]]) -> list[str]:
        """Each span's agent.

        Its own ``gen_ai.agent.name``, else its nearest ancestor's, else the one named in its
        trace, else the resource's ``gen_ai.agent.name`` or ``service.name``; folded to a
        contract's agent name (:func:`agent_name`).
        """
        names: dict[str, str] = {}
        agents = []
        for resource, found in zip(
            cols[_RESOURCE], self._inherited(cols, _EXPLICIT_AGENT), strict=True
        ):
            name = found or resource.agent or resource.service or "unknown"
            agents.append(names.get(name) or names.setdefault(name, agent_name(name)))
        return agents

    def to_arrow(self, masking: TelemetryMasker) -> pa.Table:
        """The ``spans`` rows (with ``agent`` and ``date``), masked, as one Arrow table.

        Each column is built for every span as it came, then the spans with a text their
        agent's masking changes (or whose agent keeps no content) are written over.
        """
        rows = self._rows
        cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * _COLUMNS
        agents = self._agents(cols)
        n = len(agents)
        slots: dict[str, MaskSlot] = {}
        groups: dict[int, tuple[MaskSlot, list[int]]] = {}
        for i, agent in enumerate(agents):
            slot = slots.get(agent)
            if slot is None:
                slot = slots[agent] = masking.for_agent(agent)
            groups.setdefault(id(slot), (slot, []))[1].append(i)

        dumps = orjson.dumps
        contents: tuple[Content, ...] = cols[_CONTENT]
        names: list[str | None] = list(cols[_NAME])
        status_messages: list[str | None] = list(cols[_MESSAGE])
        inputs: list[str | None] = [c.input_text for c in contents]
        outputs: list[str | None] = [c.output_text for c in contents]
        arguments: list[str | None] = [c.tool_arguments for c in contents]
        messages: list[bytes | None] = list(cols[_MESSAGES_JSON])
        documents: list[list[str] | None] = [c.documents for c in contents]
        attributes: list[bytes | None] = list(cols[_ATTRS_JSON])
        events: list[bytes | None] = list(cols[_EVENTS_JSON])
        resources: list[bytes | None] = [None] * n
        resource_col: tuple[Resource, ...] = cols[_RESOURCE]
        for slot, members in groups.values():
            keep = slot.mode != "none"
            if not keep:
                for i in members:
                    inputs[i] = outputs[i] = arguments[i] = None
                    messages[i] = None
                    documents[i] = None
            heads, tails = cols[_HEAD_TEXTS], cols[_TAIL_TEXTS]
            if not slot.active:
                texts = []
            elif keep:
                bodies = cols[_CONTENT_TEXTS]
                texts = [heads[i] + bodies[i] + tails[i] for i in members]
            else:
                texts = [heads[i] + tails[i] for i in members]
            table = slot.mask(t for span_texts in texts for t in span_texts) if texts else {}
            get = table.get
            keys = table.keys()
            for position, i in enumerate(members):
                if table and not keys.isdisjoint(texts[position]):
                    content = contents[i]
                    names[i] = get(cols[_NAME][i], cols[_NAME][i])
                    status_messages[i] = _masked(cols[_MESSAGE][i], get)
                    if keep:
                        inputs[i] = _masked(content.input_text, get)
                        outputs[i] = _masked(content.output_text, get)
                        arguments[i] = _masked(content.tool_arguments, get)
                        if content.messages:
                            messages[i] = dumps(_remask(content.messages, get))
                        documents[i] = [get(d, d) for d in content.documents]
                    if cols[_ATTRS][i]:
                        attributes[i] = dumps(_attributes(cols[_ATTRS][i], get), default=str)
                    if cols[_EVENTS][i]:
                        events[i] = dumps(_events(cols[_EVENTS][i], get), default=str)
                resource = resource_col[i]
                cached = resource.masked.get(id(slot), b"")
                if cached == b"":
                    cached = resource.masked[id(slot)] = _resource_json(resource, slot)
                resources[i] = cached

        starts_ns = pa.array(cols[_START], pa.uint64())
        ends_ns = pa.array(cols[_END], pa.uint64())
        starts = pc.divide(starts_ns, 1000).cast(pa.int64()).cast(_TIMESTAMP)
        days: dict[int, str] = {}
        dates = []
        for ns in cols[_START]:
            day = ns // _DAY_NS
            text = days.get(day)
            if text is None:
                text = days[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
            dates.append(text)
        json = pa.binary()
        string = pa.string()
        arrays = {
            "trace_id": pa.array(cols[_TRACE], string),
            "span_id": pa.array(cols[_SPAN], string),
            "parent_span_id": pa.array(cols[_PARENT], string),
            "name": pa.array(names, string),
            "kind": pa.array(cols[_KIND], string),
            "start": starts,
            "end": pc.divide(ends_ns, 1000).cast(pa.int64()).cast(_TIMESTAMP),
            "duration_s": pc.divide(
                pc.subtract(ends_ns, starts_ns).cast(pa.float64(), safe=False), 1e9
            ),
            "status": pa.array(cols[_STATUS], string),
            "status_message": pa.array(status_messages, string),
            "error_type": pa.array(cols[_ERROR_TYPE], string),
            "service": pa.array([r.service for r in resource_col], string),
            "operation": pa.array(cols[_OPERATION_COL], string),
            "openinference_kind": pa.array(cols[_OI_KIND_COL], string),
            "model": pa.array(cols[_MODEL_COL], string),
            "provider": pa.array(cols[_PROVIDER_COL], string),
            "input_tokens": pa.array(cols[_INPUT_TOKENS], pa.int64()),
            "output_tokens": pa.array(cols[_OUTPUT_TOKENS], pa.int64()),
            "conversation_id": pa.array(cols[_CONVERSATION_COL], string),
            "tool_name": pa.array(cols[_TOOL_COL], string),
            "tool_arguments": pa.array(arguments, string),
            "input_text": pa.array(inputs, string),
            "output_text": pa.array(outputs, string),
            "messages": pa.array(messages, json).cast(string),
            "documents": pa.array(documents, pa.list_(string)),
            "work_item_id": pa.array(self._inherited(cols, _WORK_ITEM_COL), string),
            "attributes": pa.array(attributes, json).cast(string),
            "resource": pa.array(resources, json).cast(string),
            "events": pa.array(events, json).cast(string),
            "agent": pa.array(agents, string),
            "date": pa.array(dates, string),
        }
        # The ``spans`` columns in the store's order (SPANS_SCHEMA; the store stamps
        # ``batch_id`` and ``ingested_at``), then the partition. The store is not imported
        # here: a worker process that decodes spans does not need its query engine.
        return pa.table(arrays)

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


def _content_texts(content: Content) -> list[str]:
    """The texts of a span's content that can hold personal data (what masking reads)."""
    texts: list[str] = []
    append = texts.append
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
