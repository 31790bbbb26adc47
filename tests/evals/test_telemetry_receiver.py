"""The OTLP/HTTP receiver: the real OpenTelemetry exporter sends to it, bad requests get OTLP's answers.

The receiver runs in a thread of the test process on a free loopback port; the agent is
instrumented with the OpenTelemetry SDK and exports through ``OTLPSpanExporter`` (HTTP and
protobuf, as deployed). The exporter sends protobuf only, so JSON is posted as the Collector's
``otlphttp`` exporter with ``encoding: json`` sends it.
"""

from __future__ import annotations

import gzip
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from evals.store import ResultsStore
from evals.telemetry import OtlpReceiver, TelemetryMasker
from tests.otel_agent import AGENT, answer, collector_json, provider, recorded, request

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000_000_000


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[OtlpReceiver]:
    masking = TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"])
    with OtlpReceiver(tmp_path / "results", port=0, masking=masking, flush_seconds=60) as running:
        yield running


def post(
    receiver: OtlpReceiver, body: bytes, content_type: str = "application/json", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = receiver.address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(
            "POST",
            headers.pop("path", "/v1/traces"),
            body=body,
            headers={"Content-Type": content_type, **headers},
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def bad_span_request() -> dict[str, Any]:
    good = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "chat",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 10),
    }
    bad = {**good, "spanId": "not-hex", "name": "broken"}
    odd = {**good, "spanId": "ef" * 8, "attributes": [{"key": "x", "value": {"weird": 1}}]}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": AGENT}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [good, bad, odd]}]}]}


def test_an_agent_instrumented_with_the_sdk_exports_to_collect_and_its_spans_are_stored(
    receiver: OtlpReceiver,
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=receiver.endpoint, compression=Compression.Gzip, timeout=10
    )
    tracer_provider = provider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = tracer_provider.get_tracer("billing-agent")
    for i in range(4):
        answer(
            tracer, f"Why was invoice {i} charged twice?", work_item=f"T-{i}", conversation=f"c{i}"
        )
    assert tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()
    assert receiver.stats.spans_accepted == 20
    assert receiver.stats.spans_rejected == 0
    receiver.flush()
    spans = ResultsStore(receiver.store.root).spans()
    assert len(spans) == 20
    assert {s.agent for s in spans} == {AGENT}
    assert sorted({s.work_item_id for s in spans}) == ["T-0", "T-1", "T-2", "T-3"]
    chats = [s for s in spans if s.operation == "chat"]
    assert len(chats) == 8
    assert {s.model for s in chats} == {"gpt-4o-mini-2024-07-18", "gpt-4o-mini"}
    assert sum(s.input_tokens or 0 for s in chats) == 4 * (812 + 901)


def test_json_requests_are_stored_and_answered_in_json(receiver: OtlpReceiver) -> None:
    with recorded() as (tracer, exporter):
        answer(tracer, "Where is my invoice?", work_item="T-7")
        message = request(exporter.get_finished_spans())
    body = gzip.compress(json.dumps(collector_json(message)).encode())
    status, headers, answer_body = post(
        receiver, body, "application/json; charset=utf-8", **{"Content-Encoding": "gzip"}
    )
    assert (status, headers["Content-Type"], json.loads(answer_body)) == (
        200,
        "application/json",
        {},
    )
    receiver.stop()  # stopping writes what waits
    assert len(ResultsStore(receiver.store.root).spans()) == 5


@pytest.mark.parametrize("content_type", ["application/json", "application/x-protobuf"])
def test_bad_spans_get_a_partial_success_with_the_count_and_the_reason(
    receiver: OtlpReceiver, content_type: str
) -> None:
    if content_type == "application/json":
        body = json.dumps(bad_span_request()).encode()
        status, _, raw = post(receiver, body, content_type)
        partial = json.loads(raw)["partialSuccess"]
        rejected, message = int(partial["rejectedSpans"]), partial["errorMessage"]
    else:
        with recorded() as (tracer, exporter):
            with tracer.start_as_current_span("ok"):
                pass
            message_pb = request(exporter.get_finished_spans())
        broken = message_pb.resource_spans[0].scope_spans[0].spans.add()
        broken.CopyFrom(message_pb.resource_spans[0].scope_spans[0].spans[0])
        broken.span_id = b"\x01\x02"
        status, _, raw = post(receiver, message_pb.SerializeToString(), content_type)
        response = ExportTraceServiceResponse.FromString(raw)
        rejected, message = (
            response.partial_success.rejected_spans,
            response.partial_success.error_message,
        )
    assert (status, rejected) == (200, 1)
    assert message.startswith("1 span(s) rejected: ")
    expected = (
        "request: field 'resourceSpans.0.scopeSpans.0.spans.1.spanId': 'not-hex': a span id is 16 hex"
        if content_type == "application/json"
        else "request: field 'resource_spans.0.scope_spans.0.spans.1.span_id': is 2 bytes: a span id"
    )
    assert expected in message


def test_a_request_with_only_warnings_says_so_with_zero_rejected(receiver: OtlpReceiver) -> None:
    request_data = bad_span_request()
    spans = request_data["resourceSpans"][0]["scopeSpans"][0]["spans"]
    del spans[1]
    status, _, raw = post(receiver, json.dumps(request_data).encode())
    partial = json.loads(raw)["partialSuccess"]
    assert status == 200
    assert partial.get("rejectedSpans", "0") == "0"
    assert "unknown value kind 'weird'" in partial["errorMessage"]


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "message"),
    [
        (b"{not json", "application/json", {}, 400, "invalid JSON"),
        (
            b'{"hello": 1}',
            "application/json",
            {},
            400,
            "not an OTLP traces request: has no resourceSpans",
        ),
        (b"[1, 2]", "application/json", {}, 400, "not an OTLP traces request"),
        (
            b"\xff\xff\xff\xff garbage",
            "application/x-protobuf",
            {},
            400,
            "not a protobuf ExportTraceServiceRequest",
        ),
        (b"not gzip", "application/json", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
        (b"<xml/>", "application/xml", {}, 415, "content type 'application/xml'"),
        (b"{}", "application/json", {"Content-Encoding": "br"}, 415, "content encoding 'br'"),
        (b"{}", "application/json", {"path": "/v1/metrics"}, 404, "traces go to /v1/traces"),
    ],
)
def test_bad_requests_get_otlp_error_answers(
    receiver: OtlpReceiver,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    got, answer_headers, raw = post(receiver, body, content_type, **headers)
    assert got == status
    if answer_headers["Content-Type"] == "application/x-protobuf":
        assert message in Status.FromString(raw).message
    else:
        assert message in json.loads(raw)["message"]
    # The receiver is still up and takes the next good request.
    assert post(receiver, json.dumps(bad_span_request()).encode())[0] == 200


def test_oversized_bodies_are_refused_with_413_before_and_after_inflating(tmp_path: Path) -> None:
    masking = TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"])
    with OtlpReceiver(tmp_path / "results", port=0, masking=masking, max_body_bytes=2_000) as small:
        big = json.dumps(bad_span_request() | {"padding": "x" * 5_000}).encode()
        status, _, raw = post(small, big)
        assert status == 413
        assert "at most 2000" in json.loads(raw)["message"]
        bomb = gzip.compress(b" " * 100_000 + b"{}")
        assert len(bomb) < 2_000
        status, _, raw = post(small, bomb, **{"Content-Encoding": "gzip"})
        assert status == 413
        assert "inflates to more than 2000" in json.loads(raw)["message"]
        assert small.stats.too_large == 2
        assert post(small, json.dumps(bad_span_request()).encode())[0] == 200


def test_other_methods_get_405_and_a_busy_receiver_503_with_retry_after(tmp_path: Path) -> None:
    masking = TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"])
    with OtlpReceiver(
        tmp_path / "results", port=0, masking=masking, max_pending_spans=1, flush_seconds=60
    ) as busy:
        host, port = busy.address
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", "/v1/traces")
        response = connection.getresponse()
        assert (response.status, response.getheader("Allow")) == (405, "POST")
        connection.close()
        body = json.dumps(bad_span_request()).encode()
        assert post(busy, body)[0] == 200  # 2 spans wait now: more than 1
        status, headers, _ = post(busy, body)
        assert (status, headers["Retry-After"]) == (503, "1")
        busy.flush()
        assert post(busy, body)[0] == 200


def test_spans_are_written_in_batches_when_enough_wait_or_time_passes(tmp_path: Path) -> None:
    masking = TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"])
    body = json.dumps(bad_span_request()).encode()
    with OtlpReceiver(
        tmp_path / "size", port=0, masking=masking, flush_spans=4, flush_seconds=60
    ) as by_size:
        post(by_size, body)  # 2 spans: below the batch size
        time.sleep(0.3)
        assert by_size.stats.batches == 0
        post(by_size, body.replace(b"abab", b"acac"))  # 2 more (another trace): a batch
        deadline = time.monotonic() + 5
        while by_size.stats.batches == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (by_size.stats.batches, by_size.stats.spans_written) == (1, 4)
    with OtlpReceiver(
        tmp_path / "time", port=0, masking=masking, flush_spans=1000, flush_seconds=0.2
    ) as by_time:
        post(by_time, body)
        deadline = time.monotonic() + 5
        while by_time.stats.batches == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert by_time.stats.spans_written == 2


def test_a_negative_content_length_is_refused_without_reading_on(receiver: OtlpReceiver) -> None:
    """``read(-1)`` would buffer whatever the client streams until it stops."""
    import socket

    with socket.create_connection(receiver.address, timeout=5) as raw:
        raw.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: -1\r\n\r\n"
        )  # and the connection stays open, as a client streaming a body would keep it
        answer = b""
        while chunk := raw.recv(4096):  # the receiver answers and closes at once
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Length '-1' is not a byte count" in answer
    assert post(receiver, json.dumps(bad_span_request()).encode())[0] == 200


def test_numbers_beyond_otlps_64_bits_are_left_out_and_the_batch_is_written(
    receiver: OtlpReceiver,
) -> None:
    """One such span used to be accepted, then crash the writer and lose its whole batch."""
    request = bad_span_request()
    good, _, odd = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    good["attributes"] = [
        {"key": "huge", "value": {"intValue": str(2**70)}},
        {"key": "fine", "value": {"intValue": "7"}},
    ]
    good["events"] = [{"name": "late", "timeUnixNano": str(2**64)}]
    odd["endTimeUnixNano"] = str(2**64)
    status, _, raw = post(receiver, json.dumps(request).encode())
    assert status == 200
    message = json.loads(raw)["partialSuccess"]["errorMessage"]
    assert "intValue '1180591620717411303424' is outside OTLP's 64-bit range" in message
    assert "beyond OTLP's 64-bit nanosecond range" in message
    assert receiver.flush() == 1
    [span] = ResultsStore(receiver.store.root).spans(AGENT)
    assert span.attributes["fine"] == 7
    assert "huge" not in span.attributes
