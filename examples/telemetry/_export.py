"""Writing spans as the OpenTelemetry Collector's ``file`` exporter does: OTLP JSON lines.

:class:`CollectorFileExporter` is an OpenTelemetry SDK ``SpanExporter``: each ``export`` call
writes its spans as one ``ExportTraceServiceRequest``, one line of OTLP JSON (protobuf's JSON
mapping with hex trace and span ids, integer enums and int64s as strings, as OTLP/JSON
specifies), gzip-compressed. :func:`otlp_json` builds that request field by field exactly as
the OTLP exporters' own encoder (``opentelemetry.exporter.otlp.proto.common``) followed by
protobuf's JSON printer would, byte for byte (``tests/examples/test_telemetry_generate.py``
compares the two on every kind of value), at a third of their cost: a history is tens of
thousands of spans.
:class:`BatchingSpanProcessor` hands it the finished spans in batches of 512, like the SDK's
``BatchSpanProcessor`` with its default batch size but without its timer thread, so the
same spans always make the same lines.
"""

from __future__ import annotations

import base64
import gzip
import math
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceState

__all__ = ["BATCH_SPANS", "BatchingSpanProcessor", "CollectorFileExporter", "otlp_json"]

BATCH_SPANS = 512
"""Spans per exported request (the ``BatchSpanProcessor``'s default ``max_export_batch_size``)."""

_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
"""OTLP's ``Span.SpanKind`` numbers (``SPAN_KIND_UNSPECIFIED`` is 0, never written)."""

_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
"""OTLP's ``SpanFlags``: ``SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`` and ``..._IS_REMOTE_MASK``."""


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The spans as one OTLP/JSON ``ExportTraceServiceRequest`` (a Collector file line).

    Grouped by resource, then instrumentation scope, in the order they first appear, as the
    OTLP encoder groups them. Fields are written in field-number order and left out when
    they hold their default (protobuf's JSON mapping); a message field the encoder always
    sets (a span's ``status``, a scope) is written even when empty.
    """
    grouped: dict[Resource, dict[InstrumentationScope | None, list[dict[str, Any]]]] = {}
    by_id: dict[int, dict[InstrumentationScope | None, list[dict[str, Any]]]] = {}
    for span in spans:
        # A resource hashes by serialising its attributes: look each object up once.
        scopes = by_id.get(id(span.resource))
        if scopes is None:
            scopes = by_id[id(span.resource)] = grouped.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, scopes in grouped.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            entry: dict[str, Any] = {"scope": _scope(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        resource_entry: dict[str, Any] = {"resource": _with_attributes({}, resource.attributes)}
        resource_entry["scopeSpans"] = scope_spans
        if resource.schema_url:
            resource_entry["schemaUrl"] = resource.schema_url
        resource_spans.append(resource_entry)
    return {"resourceSpans": resource_spans} if resource_spans else {}


def _scope(scope: InstrumentationScope | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope is not None:
        if scope.name:
            out["name"] = scope.name
        if scope.version:
            out["version"] = scope.version
        _with_attributes(out, scope.attributes)
    return out


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None  # a recorded span always has one
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
    }
    trace_state = _trace_state(context.trace_state)
    if trace_state:
        out["traceState"] = trace_state
    if span.parent is not None:
        out["parentSpanId"] = f"{span.parent.span_id:016x}"
    if span.name:
        out["name"] = span.name
    out["kind"] = _KINDS[span.kind]
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    _with_attributes(out, span.attributes)
    _count(out, "droppedAttributesCount", span.dropped_attributes)
    if span.events:
        out["events"] = [_event(event) for event in span.events]
    _count(out, "droppedEventsCount", span.dropped_events)
    if span.links:
        out["links"] = [_link(link) for link in span.links]
    _count(out, "droppedLinksCount", span.dropped_links)
    if span.status is not None:
        status: dict[str, Any] = {}
        if span.status.description:
            status["message"] = span.status.description
        if span.status.status_code.value:
            status["code"] = span.status.status_code.value
        out["status"] = status
    out["flags"] = _flags(span.parent)
    return out


def _event(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.timestamp:
        out["timeUnixNano"] = str(event.timestamp)
    if event.name:
        out["name"] = event.name
    _with_attributes(out, event.attributes)
    _count(out, "droppedAttributesCount", event.dropped_attributes)
    return out


def _link(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": f"{link.context.trace_id:032x}",
        "spanId": f"{link.context.span_id:016x}",
    }
    _with_attributes(out, link.attributes)
    _count(out, "droppedAttributesCount", link.dropped_attributes)
    out["flags"] = _flags(link.context)
    return out


def _trace_state(state: TraceState | None) -> str:
    return ",".join(f"{key}={value}" for key, value in state.items()) if state else ""


def _flags(context: SpanContext | None) -> int:
    """The span flags the OTLP encoder sets: whether the context says it is remote, and if so."""
    return _HAS_IS_REMOTE | (_IS_REMOTE if context is not None and context.is_remote else 0)


def _count(out: dict[str, Any], key: str, value: int) -> None:
    if value:
        out[key] = value


def _with_attributes(out: dict[str, Any], attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if attributes:
        out["attributes"] = [_key_value(str(key), value) for key, value in attributes.items()]
    return out


def _key_value(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": _value(value)} if key else {"value": _value(value)}


def _value(value: Any) -> dict[str, Any]:
    """One ``AnyValue``: its one field is always written, even when it holds a default."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": _double(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        values = [_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [_key_value(str(k), v) for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"an attribute value of type {type(value).__name__} has no OTLP form")


def _double(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class CollectorFileExporter(SpanExporter):
    """Exports spans to an open binary file as gzip-compressed OTLP JSON lines.

    The gzip stream carries no name and a zero time, so the same spans give the same bytes.
    """

    def __init__(self, raw: IO[bytes], compresslevel: int = 6) -> None:
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
        )
        self.requests = 0
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the spans as one request, one line."""
        if spans:
            self._gzip.write(orjson.dumps(otlp_json(spans)) + b"\n")
            self.requests += 1
            self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Finish the gzip stream (the underlying file stays open)."""
        self._gzip.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered outside the gzip stream."""
        del timeout_millis
        return True


class BatchingSpanProcessor(SpanProcessor):
    """Exports finished spans in batches of ``batch_size``, in the order they end."""

    def __init__(self, exporter: SpanExporter, batch_size: int = BATCH_SPANS) -> None:
        self.exporter = exporter
        self.batch_size = batch_size
        self._pending: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span; export a batch when it is full."""
        self._pending.append(span)
        if len(self._pending) >= self.batch_size:
            self._export()

    def _export(self) -> None:
        batch, self._pending = self._pending, []
        self.exporter.export(batch)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is queued."""
        del timeout_millis
        if self._pending:
            self._export()
        return True

    def shutdown(self) -> None:
        """Export what is queued, then shut the exporter down."""
        self.force_flush()
        self.exporter.shutdown()
