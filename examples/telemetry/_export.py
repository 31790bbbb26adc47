"""Writing spans as the OpenTelemetry Collector's ``file`` exporter does: OTLP JSON lines.

:class:`CollectorFileExporter` is an OpenTelemetry SDK ``SpanExporter``: each ``export`` call
encodes its spans with the OTLP exporters' own encoder
(``opentelemetry.exporter.otlp.proto.common``) into one ``ExportTraceServiceRequest`` and
writes it as one line of OTLP JSON (protobuf's JSON mapping with hex trace and span ids,
integer enums and int64s as strings, as OTLP/JSON specifies), gzip-compressed.
:class:`BatchingSpanProcessor` hands it the finished spans in batches of 512, like the SDK's
``BatchSpanProcessor`` with its default batch size but without its timer thread, so the
same spans always make the same lines.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence
from typing import IO, Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["BATCH_SPANS", "BatchingSpanProcessor", "CollectorFileExporter", "otlp_json"]

BATCH_SPANS = 512
"""Spans per exported request (the ``BatchSpanProcessor``'s default ``max_export_batch_size``)."""

_IDS = ("traceId", "spanId", "parentSpanId")


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The spans as one OTLP/JSON ``ExportTraceServiceRequest`` (a Collector file line)."""
    message = encode_spans(spans)
    data: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)
    for resource in data.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                for key in _IDS:
                    if key in span:  # protobuf JSON writes bytes as base64, OTLP/JSON as hex
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", ()):
                    for key in _IDS:
                        if key in link:
                            link[key] = base64.b64decode(link[key]).hex()
    return data


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
