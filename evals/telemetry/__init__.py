"""Production telemetry: OpenTelemetry traces and work items, ingested into the results store.

- :func:`ingest`: OTLP JSON or protobuf trace files and work-item exports (CSV, JSON lines,
  Parquet) into the ``spans`` and ``work_items`` tables, each file once, masked;
- :class:`OtlpReceiver`: an OTLP/HTTP endpoint (``POST /v1/traces``) that does the same for
  spans an exporter sends;
- :class:`WorkItemMapping`: which column of a work-item export is which field;
- :func:`connect_telemetry`: DuckDB over the stored tables (deduplicated views).

See docs/telemetry.md (instrumenting an agent) and docs/design/telemetry.md (tables, keys,
deduplication, masking).
"""

# Importing the package is cheap: each name loads its module on first use, so a worker process
# that decodes spans (``_parallel``) loads the decoder and the masking, not the store's query
# engine or the receiver.

from __future__ import annotations

from typing import TYPE_CHECKING

from evals._lazy import lazy_names

if TYPE_CHECKING:
    from evals.store import connect_telemetry
    from evals.telemetry._content import Content, extract_content
    from evals.telemetry._ingest import (
        FORMATS,
        FileReport,
        Format,
        IngestReport,
        ingest,
        sniff_format,
    )
    from evals.telemetry._mask import DEFAULT_PACKS, MaskMode, MaskSlot, TelemetryMasker
    from evals.telemetry._names import WORK_ITEM_ATTRIBUTE
    from evals.telemetry._otlp import (
        OtlpError,
        json_documents,
        parse_proto,
        proto_messages,
        read_json_request,
        read_proto_request,
    )
    from evals.telemetry._problems import ProblemLog
    from evals.telemetry._receiver import OtlpReceiver, ReceiverStats
    from evals.telemetry._spans import Resource, SpanTable, agent_name
    from evals.telemetry._workitems import (
        COMMON_COLUMNS,
        WorkItemFormat,
        WorkItemMapping,
        WorkItemRows,
        read_work_items,
    )

__all__ = [
    "COMMON_COLUMNS",
    "DEFAULT_PACKS",
    "FORMATS",
    "WORK_ITEM_ATTRIBUTE",
    "Content",
    "FileReport",
    "Format",
    "IngestReport",
    "MaskMode",
    "MaskSlot",
    "OtlpError",
    "OtlpReceiver",
    "ProblemLog",
    "ReceiverStats",
    "Resource",
    "SpanTable",
    "TelemetryMasker",
    "WorkItemFormat",
    "WorkItemMapping",
    "WorkItemRows",
    "agent_name",
    "connect_telemetry",
    "extract_content",
    "ingest",
    "json_documents",
    "parse_proto",
    "proto_messages",
    "read_json_request",
    "read_proto_request",
    "read_work_items",
    "sniff_format",
]

_WHERE = {
    "COMMON_COLUMNS": "evals.telemetry._workitems",
    "DEFAULT_PACKS": "evals.telemetry._mask",
    "FORMATS": "evals.telemetry._ingest",
    "WORK_ITEM_ATTRIBUTE": "evals.telemetry._names",
    "Content": "evals.telemetry._content",
    "FileReport": "evals.telemetry._ingest",
    "Format": "evals.telemetry._ingest",
    "IngestReport": "evals.telemetry._ingest",
    "MaskMode": "evals.telemetry._mask",
    "MaskSlot": "evals.telemetry._mask",
    "OtlpError": "evals.telemetry._otlp",
    "OtlpReceiver": "evals.telemetry._receiver",
    "ProblemLog": "evals.telemetry._problems",
    "ReceiverStats": "evals.telemetry._receiver",
    "Resource": "evals.telemetry._spans",
    "SpanTable": "evals.telemetry._spans",
    "TelemetryMasker": "evals.telemetry._mask",
    "WorkItemFormat": "evals.telemetry._workitems",
    "WorkItemMapping": "evals.telemetry._workitems",
    "WorkItemRows": "evals.telemetry._workitems",
    "agent_name": "evals.telemetry._spans",
    "connect_telemetry": "evals.store",
    "extract_content": "evals.telemetry._content",
    "ingest": "evals.telemetry._ingest",
    "json_documents": "evals.telemetry._otlp",
    "parse_proto": "evals.telemetry._otlp",
    "proto_messages": "evals.telemetry._otlp",
    "read_json_request": "evals.telemetry._otlp",
    "read_proto_request": "evals.telemetry._otlp",
    "read_work_items": "evals.telemetry._workitems",
    "sniff_format": "evals.telemetry._ingest",
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
