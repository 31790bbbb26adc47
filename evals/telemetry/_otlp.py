"""Reading OTLP trace requests: JSON (as the Collector's file exporter writes it) and protobuf.

JSON follows the OTLP/JSON encoding: lowerCamelCase keys, hex ``traceId``/``spanId``, enums
as integers, 64-bit integers as decimal strings or numbers (the protobuf JSON mapping's base64
ids, enum names and snake_case keys are accepted too). A Collector ``file`` exporter writes one
``{"resourceSpans": [...]}`` request a line; a single request (or a list of them) spread over
several lines is read as one document. Protobuf is an ``ExportTraceServiceRequest``: one
message (what the OTLP/HTTP exporter posts), or the file exporter's ``format: proto`` stream
(each message after its length as a 4-byte big-endian integer).

A span without valid ids or times is rejected with a problem naming the line and the field; a
bad attribute is left out of its span with a problem; the rest of the request is kept.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from evals.telemetry._content import Event
from evals.telemetry._names import SPAN_KINDS, STATUS_CODES
from evals.telemetry._problems import ProblemLog
from evals.telemetry._spans import Resource, SpanTable

__all__ = [
    "OtlpError",
    "json_documents",
    "json_line",
    "open_maybe_gzip",
    "parse_proto",
    "proto_messages",
    "read_json_request",
    "read_proto_request",
]

_KIND_NAMES = {f"SPAN_KIND_{k.upper()}": k for k in SPAN_KINDS}
_STATUS_NAMES = {f"STATUS_CODE_{c.upper()}": c for c in STATUS_CODES}
_CAMEL = re.compile(r"_([a-z])")
_HEX = re.compile(r"[0-9a-fA-F]+")


class OtlpError(ValueError):
    """A payload that is not an OTLP trace request at all (the receiver answers 400)."""


class _Bad(ValueError):
    """One value of the wrong shape (its span or attribute is left out)."""


def open_maybe_gzip(path: Path) -> IO[bytes]:
    """A file for reading bytes, gunzipped when it starts with gzip's magic number."""
    handle = path.open("rb")
    if handle.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=handle)  # type: ignore[return-value]
    return handle


# -- JSON -----------------------------------------------------------------------------------


def json_documents(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Each OTLP JSON request of a file: ``(line, request, None)`` or ``(line, None, error)``.

    One request a line (the Collector's file exporter); if the first line is not JSON on its
    own, the whole file is read as one document (a request, or a list of requests).
    """
    with open_maybe_gzip(path) as handle:
        line_no = 0
        first = True
        for raw in handle:
            line_no += 1
            if not raw.strip():
                continue
            document, error = json_line(raw)
            if error is not None and first:
                whole = _whole_document(path)
                if whole is not None:
                    yield from _requests(whole, 1)
                    return
            first = False
            if error is not None:
                yield line_no, None, error
            else:
                yield from _requests(document, line_no)


def json_line(raw: bytes) -> tuple[Any, str | None]:
    """One line of a Collector file decoded: ``(request, None)`` or ``(None, what is wrong)``."""
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        truncated = not raw.endswith(b"\n")
        hint = " (the file ends mid-line: truncated?)" if truncated else ""
        return None, f"invalid JSON: {_json_error(raw, exc)}{hint}"


def _json_error(line: bytes, error: orjson.JSONDecodeError) -> str:
    """What is wrong with a line, the column counted in the line without its line break."""
    try:
        orjson.loads(line.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as exc:
        error = exc
    return f"{error.msg} at column {error.colno}"


def _whole_document(path: Path) -> Any:
    with open_maybe_gzip(path) as handle:
        try:
            return orjson.loads(handle.read())
        except orjson.JSONDecodeError:
            return None


def _requests(document: Any, line: int) -> Iterator[tuple[int, Any, str | None]]:
    if isinstance(document, list):
        for item in document:
            yield line, item, None
    else:
        yield line, document, None


def _camel_keys(value: Any) -> Any:
    """snake_case keys (the protobuf field names) as OTLP/JSON's lowerCamelCase."""
    if isinstance(value, dict):
        return {
            _CAMEL.sub(lambda m: m.group(1).upper(), k): _camel_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, int | float) else "null"


_LOWER_HEX = re.compile(r"[0-9a-f]+")
_ZEROS = {16: "0" * 16, 32: "0" * 32}


def _lower_hex(value: Any, digits: int) -> bool:
    """Whether ``value`` is an id as the Collector writes it.

    That is ``digits`` lower-case hex digits, not all zeros; anything else is checked, and
    converted or refused, by :func:`_hex_id`.
    """
    return (
        type(value) is str
        and len(value) == digits
        and _LOWER_HEX.fullmatch(value) is not None
        and value != _ZEROS[digits]
    )


def _hex_id(value: Any, size: int, what: str) -> str:
    if type(value) is str and len(value) == 2 * size and _HEX.fullmatch(value):
        if value.strip("0"):
            return value.lower()
        raise _Bad(f"is all zeros, which is not a valid {what} id")
    shape = f"a {what} id is {2 * size} hex digits in a string"
    if value is None or value == "":
        raise _Bad(f"required ({shape})")
    if not isinstance(value, str):
        raise _Bad(f"{value!r} is {_json_type(value)}: {shape}")
    if len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
    else:
        try:  # the protobuf JSON mapping's base64 ids
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != size:
        raise _Bad(f"{value[:40]!r}: {shape}")
    if not any(raw):
        raise _Bad(f"is all zeros, which is not a valid {what} id")
    return raw.hex()


_FIXED64_MAX = 2**64 - 1
"""The largest OTLP time (``fixed64`` nanoseconds)."""
_INT64 = (-(2**63), 2**63 - 1)
"""The range of an OTLP ``intValue``."""


def _nanos(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    elif value is None:
        raise _Bad("required (a number of nanoseconds since 1970)")
    else:
        raise _Bad(f"{value!r} is not a number of nanoseconds since 1970")
    if number <= 0:
        raise _Bad("required (0 is not a time)")
    if number > _FIXED64_MAX:
        raise _Bad(f"{value!r} is beyond OTLP's 64-bit nanosecond range")
    return number


def _json_any(value: Any) -> Any:
    if type(value) is not dict:
        raise _Bad(f"is {_json_type(value)}, not an OTLP AnyValue object")
    text = value.get("stringValue")
    if text is not None:
        if type(text) is str:
            return text
        raise _Bad("stringValue is not text")
    if "intValue" in value:
        number = value["intValue"]
        whole: int | None = None
        if isinstance(number, int) and not isinstance(number, bool):
            whole = number
        elif isinstance(number, str):
            with contextlib.suppress(ValueError):  # also beyond Python's 4300-digit limit
                whole = int(number)
        if whole is None:
            raise _Bad(f"intValue {str(number)[:40]!r} is not a whole number")
        if not _INT64[0] <= whole <= _INT64[1]:
            raise _Bad(f"intValue {str(number)[:40]!r} is outside OTLP's 64-bit range")
        return whole
    if "doubleValue" in value:
        number = value["doubleValue"]
        if isinstance(number, int | float | str) and not isinstance(number, bool):
            try:
                return float(number)
            except ValueError:
                pass
        raise _Bad(f"doubleValue {number!r} is not a number")
    if "boolValue" in value:
        flag = value["boolValue"]
        if isinstance(flag, bool):
            return flag
        raise _Bad(f"boolValue {flag!r} is not true or false")
    if "arrayValue" in value:
        items = (value["arrayValue"] or {}).get("values") or []
        if not isinstance(items, list):
            raise _Bad("arrayValue.values is not a list")
        return [_json_any(item) for item in items]
    if "kvlistValue" in value:
        pairs = (value["kvlistValue"] or {}).get("values") or []
        if not isinstance(pairs, list):
            raise _Bad("kvlistValue.values is not a list")
        return {str(p.get("key")): _json_any(p.get("value") or {}) for p in pairs}
    if "bytesValue" in value:
        return str(value["bytesValue"])
    if not value:
        return None
    raise _Bad(f"unknown value kind {next(iter(value))!r}")


def _json_attributes(items: Any, warn: Callable[[str, str], None]) -> dict[str, Any]:
    """``[{key, value}]`` as a dict; ``warn(path, message)`` for each one left out."""
    if items is None:
        return {}
    if type(items) is not list:
        warn(
            "attributes",
            f"Input should be a valid list of {{key, value}} objects, not {_json_type(items)}; "
            "the attributes were left out",
        )
        return {}
    found: dict[str, Any] = {}
    for index, item in enumerate(items):
        if type(item) is dict:  # the common case first: a text value
            value = item.get("value")
            if type(value) is dict:
                text = value.get("stringValue")
                if type(text) is str and type(item.get("key")) is str:
                    found[item["key"]] = text
                    continue
        if type(item) is not dict or type(item.get("key")) is not str:
            warn(f"attributes.{index}", "is not a {key, value} object; left out")
            continue
        try:
            value = _json_any(item.get("value") or {})
        except (_Bad, AttributeError, TypeError) as exc:
            warn(f"attributes.{index}", f"attribute {item['key']!r}: {_reason(exc)}; left out")
            continue
        if value is not None:
            found[item["key"]] = value
    return found


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _Bad) else f"malformed value ({exc})"


def _enum(value: Any, names: tuple[str, ...], by_name: dict[str, str]) -> str:
    if value is None:
        return names[0]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in by_name:
        return by_name[value]
    raise _Bad(f"{value!r} is not one of 0–{len(names) - 1}")


def read_json_request(
    request: Any, table: SpanTable, log: ProblemLog, where: str
) -> tuple[int, int]:
    """Add the spans of one OTLP/JSON request to ``table``.

    Args:
        request: the decoded JSON request.
        table: where the good spans go.
        log: where problems go, each at ``where`` (``line 12``) and a field path.
        where: the line (or request) the request came from.

    Returns:
        Spans kept and spans rejected.

    Raises:
        OtlpError: ``request`` is not an OTLP traces request.
    """
    if type(request) is not dict:
        raise OtlpError(f"is {_json_type(request)}, not an object with resourceSpans")
    blocks = request.get("resourceSpans")
    if blocks is None and "resource_spans" in request:
        request = _camel_keys(request)
        blocks = request.get("resourceSpans")
    if blocks is None:
        raise OtlpError("has no resourceSpans: not an OTLP traces request")
    if type(blocks) is not list:
        raise OtlpError(f"resourceSpans is {_json_type(blocks)}, not a list")
    kept = rejected = 0

    def add(path: str, message: str) -> None:
        log.add(f"{where}: field '{path}'", message)

    for r, block in enumerate(blocks):
        here = f"resourceSpans.{r}"
        if type(block) is not dict:
            add(here, f"is {_json_type(block)}, not an object; left out")
            continue

        def warn_resource(path: str, message: str, here: str = here) -> None:
            add(f"{here}.resource.{path}", message)

        resource_obj = block.get("resource") or {}
        attributes = (
            _json_attributes(resource_obj.get("attributes"), warn_resource)
            if type(resource_obj) is dict
            else {}
        )
        resource = Resource.of(attributes, table.work_item_attribute)
        scopes = block.get("scopeSpans") or []
        if type(scopes) is not list:
            add(f"{here}.scopeSpans", f"is {_json_type(scopes)}, not a list; left out")
            continue
        for s, scope_block in enumerate(scopes):
            scope_here = f"{here}.scopeSpans.{s}"
            if type(scope_block) is not dict:
                add(scope_here, f"is {_json_type(scope_block)}, not an object; left out")
                continue
            scope = scope_block.get("scope")
            scope = scope if type(scope) is dict else {}
            spans = scope_block.get("spans") or []
            if type(spans) is not list:
                add(f"{scope_here}.spans", f"is {_json_type(spans)}, not a list; left out")
                continue
            for k, span in enumerate(spans):
                if _json_span(span, scope, resource, table, add, scope_here, k):
                    kept += 1
                else:
                    rejected += 1
    return kept, rejected


def _json_span(
    span: Any,
    scope: dict[str, Any],
    resource: Resource,
    table: SpanTable,
    add: Callable[[str, str], None],
    scope_here: str,
    k: int,
) -> bool:
    if type(span) is not dict:
        add(f"{scope_here}.spans.{k}", f"is {_json_type(span)}, not a span object; span left out")
        return False
    # The common shapes are checked inline; anything else goes through the full checks.
    field = "traceId"
    value: Any
    trace_id: str
    span_id: str
    parent_id: str | None
    try:
        value = span.get("traceId")
        trace_id = value if _lower_hex(value, 32) else _hex_id(value, 16, "trace")
        field = "spanId"
        value = span.get("spanId")
        span_id = value if _lower_hex(value, 16) else _hex_id(value, 8, "span")
        field = "parentSpanId"
        value = span.get("parentSpanId")
        if not value:
            parent_id = None
        elif _lower_hex(value, 16):
            parent_id = value
        else:
            parent_id = _hex_id(value, 8, "parent span")
        field = "startTimeUnixNano"
        start = _nanos(span.get("startTimeUnixNano"))
        field = "endTimeUnixNano"
        end = _nanos(span.get("endTimeUnixNano"))
        if end < start:
            raise _Bad("is before startTimeUnixNano")
    except _Bad as exc:
        add(f"{scope_here}.spans.{k}.{field}", f"{exc}; span left out")
        return False

    def warn(path: str, message: str) -> None:
        add(f"{scope_here}.spans.{k}.{path}", message)

    name = span.get("name")
    if not isinstance(name, str):
        warn("name", f"is {_json_type(name)}, not text; stored as empty")
        name = ""
    value = span.get("kind")
    if type(value) is int and 0 <= value < len(SPAN_KINDS):
        kind = SPAN_KINDS[value]
    else:
        try:
            kind = _enum(value, SPAN_KINDS, _KIND_NAMES)
        except _Bad as exc:
            warn("kind", f"{exc}; stored as unspecified")
            kind = "unspecified"
    status_obj = span.get("status")
    status, message = "unset", None
    if type(status_obj) is dict:
        if status_obj:
            try:
                status = _enum(status_obj.get("code"), STATUS_CODES, _STATUS_NAMES)
            except _Bad as exc:
                warn("status.code", f"{exc}; stored as unset")
            text = status_obj.get("message")
            message = text if isinstance(text, str) and text else None
    elif status_obj is not None:
        warn("status", f"is {_json_type(status_obj)}, not an object; stored as unset")
    attrs = _json_attributes(span.get("attributes"), warn)
    if scope.get("name"):
        attrs.setdefault("otel.scope.name", str(scope["name"]))
        if scope.get("version"):
            attrs.setdefault("otel.scope.version", str(scope["version"]))
    events: list[Event] = []
    raw_events = span.get("events") or []
    if type(raw_events) is list:
        for e, event in enumerate(raw_events):
            if type(event) is not dict:
                warn(f"events.{e}", f"is {_json_type(event)}, not an object; left out")
                continue

            def warn_event(path: str, message: str, e: int = e) -> None:
                warn(f"events.{e}.{path}", message)

            try:
                at = _nanos(event.get("timeUnixNano"))
            except _Bad:
                at = start
            events.append(
                (
                    str(event.get("name") or ""),
                    at,
                    _json_attributes(event.get("attributes"), warn_event),
                )
            )
    else:
        warn("events", f"is {_json_type(raw_events)}, not a list; left out")
    try:
        table.add(
            resource, trace_id, span_id, parent_id, name, kind, start, end, status, message,
            attrs, events, lambda key, msg: warn("attributes", f"attribute {key!r}: {msg}"),
        )  # fmt: skip
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        add(f"{scope_here}.spans.{k}", f"content of an unknown shape ({exc}); span left out")
        return False
    return True


# -- protobuf -------------------------------------------------------------------------------


def parse_proto(data: bytes) -> ExportTraceServiceRequest:
    """One ``ExportTraceServiceRequest``.

    Raises:
        OtlpError: the bytes are not one.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpError(f"not a protobuf ExportTraceServiceRequest ({exc})") from None
    return request


def proto_messages(data: bytes) -> list[bytes]:
    """The messages of a protobuf file.

    A length-prefixed stream (the Collector's ``format: proto``) when the lengths tile the
    file exactly, else the whole file as one message.
    """
    messages: list[bytes] = []
    offset = 0
    while offset + 4 <= len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        if offset + 4 + size > len(data):
            return [data]
        messages.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return messages if offset == len(data) and messages else [data]


def _proto_any(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_proto_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _proto_any(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _proto_attributes(items: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    item: KeyValue
    for item in items:
        value = _proto_any(item.value)
        if value is not None:
            found[item.key] = value
    return found


def _raw_id(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size:
        shape = f"a {what} id is {size} bytes"
        raise _Bad(f"required ({shape})" if not raw else f"is {len(raw)} bytes: {shape}")
    if not any(raw):
        raise _Bad(f"is all zeros, which is not a valid {what} id")
    return raw.hex()


def read_proto_request(
    request: ExportTraceServiceRequest, table: SpanTable, log: ProblemLog, where: str
) -> tuple[int, int]:
    """Add the spans of one protobuf request to ``table``; spans kept and rejected."""
    kept = rejected = 0
    for r, block in enumerate(request.resource_spans):
        resource = Resource.of(
            _proto_attributes(block.resource.attributes), table.work_item_attribute
        )
        for s, scope_block in enumerate(block.scope_spans):
            scope = scope_block.scope
            for k, span in enumerate(scope_block.spans):
                here = f"{where}: field 'resource_spans.{r}.scope_spans.{s}.spans.{k}"
                field = "trace_id"
                try:
                    trace_id = _raw_id(span.trace_id, 16, "trace")
                    field = "span_id"
                    span_id = _raw_id(span.span_id, 8, "span")
                    field = "parent_span_id"
                    parent = (
                        _raw_id(span.parent_span_id, 8, "parent span")
                        if span.parent_span_id
                        else None
                    )
                    field = "start_time_unix_nano"
                    start = _nanos(span.start_time_unix_nano)
                    field = "end_time_unix_nano"
                    end = _nanos(span.end_time_unix_nano)
                    if end < start:
                        raise _Bad("is before start_time_unix_nano")
                except _Bad as exc:
                    log.add(f"{here}.{field}'", f"{exc}; span left out")
                    rejected += 1
                    continue

                def warn(name: str, message: str, here: str = here) -> None:
                    log.add(f"{here}.attributes'", f"attribute {name!r}: {message}")

                attrs = _proto_attributes(span.attributes)
                if scope.name:
                    attrs.setdefault("otel.scope.name", scope.name)
                    if scope.version:
                        attrs.setdefault("otel.scope.version", scope.version)
                events: list[Event] = [
                    (e.name, e.time_unix_nano or start, _proto_attributes(e.attributes))
                    for e in span.events
                ]
                kind = SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "unspecified"
                code = span.status.code
                status = STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else "unset"
                table.add(
                    resource, trace_id, span_id, parent, span.name, kind, start, end, status,
                    span.status.message or None, attrs, events, warn,
                )  # fmt: skip
                kept += 1
    return kept, rejected
