"""An OTLP/HTTP trace receiver that writes what exporters send to the results store.

``POST /v1/traces`` with ``application/x-protobuf`` or ``application/json`` (gzip or deflate
content encoding allowed), as ``opentelemetry-exporter-otlp-proto-http`` and the Collector's
``otlphttp`` exporter send it. Answers as OTLP/HTTP says:

- 200 with an ``ExportTraceServiceResponse``; ``partialSuccess`` carries the number of spans
  rejected and why (bad ids or times), or warnings (attributes left out) with 0 rejected;
- 400 with a ``google.rpc.Status`` when the body is not an OTLP request (or its
  ``Content-Length`` is not a byte count);
- 413 when the body (or what it inflates to) is over ``max_body_bytes``;
- 415 for another content type or encoding; 404 and 405 for other paths and methods;
- 503 with ``Retry-After`` while more than ``max_pending_spans`` wait to be written.

Spans are masked and written in batches, when ``flush_spans`` are waiting or every
``flush_seconds``, and on :meth:`OtlpReceiver.stop`. A plain threaded HTTP server, no web
framework; a bad payload is an answer, never a crash.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from google.protobuf.json_format import MessageToDict
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from evals.store import ResultsStore
from evals.telemetry._mask import TelemetryMasker
from evals.telemetry._names import WORK_ITEM_ATTRIBUTE
from evals.telemetry._otlp import OtlpError, parse_proto, read_json_request, read_proto_request
from evals.telemetry._parallel import no_cyclic_gc
from evals.telemetry._problems import ProblemLog
from evals.telemetry._spans import SpanTable

__all__ = ["OtlpReceiver", "ReceiverStats"]

log = logging.getLogger("impactgate.collect")

_JSON = "application/json"
_PROTOBUF = "application/x-protobuf"
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_GRPC = {400: 3, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 500: 13, 503: 14}
_SHOWN = 5


@dataclass
class ReceiverStats:
    """What the receiver did since it started."""

    requests: int = 0
    spans_accepted: int = 0
    spans_rejected: int = 0
    spans_written: int = 0
    batches: int = 0
    bad_requests: int = 0
    too_large: int = 0
    unsupported: int = 0
    busy: int = 0
    write_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        """Plain data."""
        return asdict(self)


class _Payload(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OtlpReceiver:
    """An OTLP/HTTP endpoint writing the spans it receives to a results root.

    Args:
        results: the results root.
        host: the interface to listen on (loopback by default).
        port: the port (4318 is OTLP/HTTP's; 0 picks a free one).
        policies: the contracts folder, for each agent's masking.
        work_item_attribute: the span attribute that names a span's work item.
        max_body_bytes: the largest body accepted, before and after decompression (20 MiB,
            as OTLP recommends).
        flush_spans: write when this many spans wait.
        flush_seconds: write at least this often when spans wait.
        max_pending_spans: answer 503 while more than this many wait.
        masking: a ready masker (otherwise built from ``policies``).
    """

    def __init__(
        self,
        results: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        policies: str | Path | None = "policies",
        work_item_attribute: str = WORK_ITEM_ATTRIBUTE,
        max_body_bytes: int = 20 * 1024 * 1024,
        flush_spans: int = 5_000,
        flush_seconds: float = 10.0,
        max_pending_spans: int = 200_000,
        masking: TelemetryMasker | None = None,
    ) -> None:
        self.store = ResultsStore(results)
        self.masking = masking or TelemetryMasker(policies)
        self.work_item_attribute = work_item_attribute
        self.max_body_bytes = max_body_bytes
        self.flush_spans = flush_spans
        self.flush_seconds = flush_seconds
        self.max_pending_spans = max_pending_spans
        self.stats = ReceiverStats()
        self._table = SpanTable(work_item_attribute)
        self._unwritten: list[pa.Table] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def endpoint(self) -> str:
        """The URL exporters post traces to."""
        host, port = self.address
        return f"http://{host}:{port}/v1/traces"

    def start(self) -> OtlpReceiver:
        """Serve and flush in background threads; returns at once."""
        serving = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        flushing = threading.Thread(target=self._flush_loop, daemon=True)
        self._threads = [serving, flushing]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and write every span received."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        self.flush()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- batching ---------------------------------------------------------------------------

    def pending(self) -> int:
        """Spans received and not written yet."""
        with self._lock:
            return len(self._table) + sum(int(t.num_rows) for t in self._unwritten)

    def flush(self) -> int:
        """Mask and write the spans waiting now; returns how many were written."""
        with self._write_lock:
            with self._lock:
                table, self._table = self._table, SpanTable(self.work_item_attribute)
                waiting, self._unwritten = self._unwritten, []
            if len(table):
                with no_cyclic_gc():
                    waiting.append(table.to_arrow(self.masking))
            written = 0
            for index, arrow in enumerate(waiting):
                try:
                    records = self.store.write_telemetry(
                        "spans", arrow, source="otlp-http", format="otlp-http"
                    )
                except Exception:  # a full disk must not lose what is still in memory
                    log.exception(
                        "writing %d spans failed; retrying at the next flush", arrow.num_rows
                    )
                    with self._lock:
                        self._unwritten = waiting[index:] + self._unwritten
                        self.stats.write_errors += 1
                    break
                rows = sum(r.rows for r in records)
                written += rows
                with self._lock:
                    self.stats.batches += 1
                    self.stats.spans_written += rows
            if written:
                log.info("wrote %d spans", written)
            return written

    def _flush_loop(self) -> None:
        last = time.monotonic()
        while True:
            with self._lock:
                self._wake.wait(timeout=min(self.flush_seconds, 1.0))
                stopping = self._stopping
                size = len(self._table) + len(self._unwritten)
            due = time.monotonic() - last >= self.flush_seconds
            if stopping:
                return
            if size and (due or size >= self.flush_spans):
                try:
                    self.flush()
                except Exception:  # a bug must not stop every later batch from being written
                    log.exception("flushing spans failed")
                    with self._lock:
                        self.stats.write_errors += 1
                last = time.monotonic()
            elif due:
                last = time.monotonic()

    # -- requests ---------------------------------------------------------------------------

    def handle(self, content_type: str, encoding: str, body: bytes) -> tuple[int, str, bytes]:
        """Answer one ``POST /v1/traces`` body: ``(status, content type, response body)``."""
        answer_type = _PROTOBUF if content_type == _PROTOBUF else _JSON
        try:
            data = self._inflate(encoding, body)
            with self._lock:
                waiting = len(self._table) + sum(t.num_rows for t in self._unwritten)
            if waiting > self.max_pending_spans:
                self.stats.busy += 1
                raise _Payload(503, f"{waiting} spans wait to be written; retry later")
            problems = ProblemLog("request", limit=_SHOWN)
            with no_cyclic_gc():
                _, rejected = self._read(content_type, data, problems)
        except OtlpError as exc:
            self.stats.bad_requests += 1
            return _status(400, f"not an OTLP traces request: {exc}", answer_type)
        except _Payload as exc:
            if exc.status == 413:
                self.stats.too_large += 1
            elif exc.status == 400:
                self.stats.bad_requests += 1
            return _status(exc.status, str(exc), answer_type)
        response = ExportTraceServiceResponse()
        if problems.count:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=rejected,
                    error_message=_message(problems, rejected),
                )
            )
        if answer_type == _PROTOBUF:
            return 200, _PROTOBUF, response.SerializeToString()
        return 200, _JSON, orjson.dumps(MessageToDict(response))

    def _read(self, content_type: str, data: bytes, problems: ProblemLog) -> tuple[int, int]:
        """Decode a body into the waiting spans: spans kept and rejected."""
        if content_type == _PROTOBUF:
            request = parse_proto(data)
            with self._lock:
                kept, rejected = read_proto_request(request, self._table, problems, "request")
                self._count(kept, rejected)
            return kept, rejected
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _Payload(400, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        with self._lock:
            kept, rejected = read_json_request(document, self._table, problems, "request")
            self._count(kept, rejected)
        return kept, rejected

    def _count(self, kept: int, rejected: int) -> None:
        """Count a request's spans and wake the writer when a batch is full (lock held)."""
        self.stats.spans_accepted += kept
        self.stats.spans_rejected += rejected
        if len(self._table) >= self.flush_spans:
            self._wake.notify_all()

    def _inflate(self, encoding: str, body: bytes) -> bytes:
        if encoding in ("", "identity"):
            return body
        inflater = zlib.decompressobj(_WBITS[encoding])
        try:
            data = inflater.decompress(body, self.max_body_bytes + 1)
        except zlib.error as exc:
            raise _Payload(400, f"the body is not valid {encoding} ({exc})") from None
        if len(data) > self.max_body_bytes:
            raise _Payload(413, f"the body inflates to more than {self.max_body_bytes} bytes")
        if not inflater.eof:
            raise _Payload(400, f"the {encoding} body is truncated")
        return data


def _message(problems: ProblemLog, rejected: int) -> str:
    head = f"{rejected} span(s) rejected" if rejected else "all spans accepted, with warnings"
    shown = "; ".join(f"{p.field}: {p.message}" for p in problems.problems)
    hidden = problems.count - len(problems.problems)
    more = f"; and {hidden} more" if hidden else ""
    return f"{head}: {shown}{more}"


def _status(code: int, message: str, content_type: str) -> tuple[int, str, bytes]:
    status = Status(code=_GRPC.get(code, 2), message=message)
    if content_type == _PROTOBUF:
        return code, _PROTOBUF, status.SerializeToString()
    return code, _JSON, orjson.dumps(MessageToDict(status))


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "impactgate-collect"
        timeout = 30

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: int, message: str, content_type: str = _JSON) -> None:
            self._send(*_status(status, message, content_type))

        def _drain(self, length: int) -> None:
            if 0 < length <= receiver.max_body_bytes:
                self.rfile.read(length)
            elif length:
                self.close_connection = True

        def do_POST(self) -> None:
            receiver.stats.requests += 1
            declared = self.headers.get("Content-Length")
            try:
                length = int(declared or 0)
            except ValueError:
                length = -1
            if length < 0:  # read(-1) would read until the client stops sending
                self.close_connection = True
                self._refuse(400, f"Content-Length {str(declared)[:40]!r} is not a byte count")
                return
            if self.path.split("?", 1)[0].rstrip("/") != "/v1/traces":
                self._drain(length)
                self._refuse(404, f"no such endpoint {self.path!r}; traces go to /v1/traces")
                return
            content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
            if content_type not in (_JSON, _PROTOBUF):
                receiver.stats.unsupported += 1
                self._drain(length)
                given = content_type or "missing"
                self._refuse(415, f"content type {given!r}: send {_PROTOBUF} or {_JSON}")
                return
            if encoding not in ("identity", *_WBITS):
                receiver.stats.unsupported += 1
                self._drain(length)
                message = f"content encoding {encoding!r}: send gzip, deflate or none"
                self._refuse(415, message, content_type)
                return
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self.close_connection = True
                self._refuse(
                    411, "send a Content-Length (chunked bodies are not read)", content_type
                )
                return
            if length > receiver.max_body_bytes:
                receiver.stats.too_large += 1
                self.close_connection = True  # the body is not read
                message = f"the body is {length} bytes; at most {receiver.max_body_bytes}"
                self._refuse(413, message, content_type)
                return
            body = self.rfile.read(length)
            if len(body) < length:
                self.close_connection = True
                self._refuse(400, "the body ended before Content-Length bytes", content_type)
                return
            try:
                status, answer_type, answer = receiver.handle(content_type, encoding, body)
            except Exception:  # a bug, not the payload: answer and keep serving
                log.exception("handling a request failed")
                self._refuse(500, "internal error; see the receiver's log", content_type)
                return
            if status == 503:
                self._send(status, answer_type, answer, Retry_After="1")
            else:
                self._send(status, answer_type, answer)

        def _not_allowed(self) -> None:
            self.close_connection = True
            answer = _status(405, f"{self.command} is not supported; POST /v1/traces", _JSON)
            self._send(*answer, Allow="POST")

        do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed

    return Handler
