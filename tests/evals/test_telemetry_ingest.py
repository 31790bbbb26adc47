"""Ingesting OpenTelemetry traces: the Collector's files, every attribute convention, bad input.

Spans come from a small agent instrumented with the real OpenTelemetry SDK
(``tests/otel_agent.py``), written as the Collector's file exporter writes them, or from
hand-written OTLP/JSON where a test needs a shape the SDK would not produce.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from evals.errors import UserError
from evals.store import ResultsStore, connect_telemetry
from evals.telemetry import TelemetryMasker, ingest, sniff_format
from tests.otel_agent import AGENT, answer, collector_file_lines, collector_json, recorded, request

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in Unix nanoseconds


def agent_file(tmp_path: Path, name: str = "traces.jsonl", n: int = 3, **kwargs: Any) -> Path:
    with recorded() as (tracer, exporter):
        for i in range(n):
            answer(
                tracer, f"Why was I charged twice for invoice {i}?", work_item=f"T-{i}", **kwargs
            )
        spans = exporter.get_finished_spans()
    path = tmp_path / name
    # Two export batches, as a BatchSpanProcessor would send them.
    path.write_text(
        collector_file_lines(request(spans[: len(spans) // 2]), request(spans[len(spans) // 2 :]))
    )
    return path


def span(trace: str = "a" * 32, span_id: str = "b" * 16, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "traceId": trace,
        "spanId": span_id,
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 1_500_000_000),
        "attributes": [],
    }
    data.update(fields)
    return data


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def otlp_line(*spans: dict[str, Any], service: str = AGENT) -> str:
    resource = {"attributes": [attr("service.name", service)]}
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": resource,
                    "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}],
                }
            ]
        }
    )


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def masking() -> TelemetryMasker:
    """The repository's contracts; agents without one get default.yaml (pii.yaml's NER model
    is for tests marked ``model``, in test_telemetry_masking.py)."""
    return TelemetryMasker(POLICIES, default_packs=["rules/default.yaml"])


# -- the Collector's file, end to end -----------------------------------------------------------


def test_the_same_collector_file_ingested_twice_counts_each_span_once(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = agent_file(tmp_path)
    results = tmp_path / "results"
    first = ingest([path], results, masking=masking)
    assert first.ok
    assert first.files[0].records == 15
    assert first.files[0].agents == {AGENT: 15}
    again = ingest([path], results, masking=masking)
    assert again.files[0].status == "already ingested"
    assert again.files[0].records == 0
    # The same spans under another name (a rotated copy) are read, and still count once.
    copy = tmp_path / "copy.jsonl"
    copy.write_text(path.read_text() + "\n")
    assert ingest([copy], results, masking=masking).files[0].records == 15
    store = ResultsStore(results)
    assert len(store.table("spans")) == 30  # stored twice ...
    assert len(store.spans()) == 15  # ... read once
    with connect_telemetry(results) as db:
        assert db.sql(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans"
        ).fetchall() == [(15, 15)]


def test_an_instrumented_agents_spans_are_mapped_to_the_tables_fields(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = agent_file(tmp_path, n=1, fail_tool=True)
    ingest([path], tmp_path / "results", masking=masking)
    spans = {
        s.name + (f" {s.input_tokens}" if s.input_tokens else ""): s
        for s in ResultsStore(tmp_path / "results").spans()
    }
    root = spans[f"invoke_agent {AGENT}"]
    retrieval = spans["retrieval help-centre"]
    first_chat = spans["chat gpt-4o-mini 812"]
    tool = spans["execute_tool lookup_invoice"]
    assert root.parent_span_id is None
    assert root.operation == "invoke_agent"
    assert {s.agent for s in spans.values()} == {AGENT}
    assert {s.trace_id for s in spans.values()} == {root.trace_id}
    assert {s.work_item_id for s in spans.values()} == {"T-0"}  # inherited from the agent's span
    assert {s.conversation_id for s in spans.values()} == {"conv-1", None}
    assert retrieval.operation == "retrieval"
    assert retrieval.input_text == "Why was I charged twice for invoice 0?"
    assert retrieval.documents[0].startswith("Duplicate charges are refunded")
    assert first_chat.model == "gpt-4o-mini-2024-07-18"
    assert first_chat.provider == "openai"
    assert (first_chat.input_tokens, first_chat.output_tokens) == (812, 24)
    assert first_chat.messages[0] == {
        "role": "user",
        "content": "Why was I charged twice for invoice 0?",
    }
    assert first_chat.messages[1]["tool_calls"] == [
        {"name": "lookup_invoice", "arguments": '{"invoice":"INV-1042"}'}
    ]
    assert (
        first_chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    )  # the unused alternative stays
    assert "gen_ai.input.messages" not in first_chat.attributes
    assert tool.tool_name == "lookup_invoice"
    assert json.loads(tool.tool_arguments or "") == {"invoice": "INV-1042"}
    assert tool.failed
    assert tool.status == "error"
    assert tool.error_type == "TimeoutError"
    assert tool.status_message == "the billing API did not answer in 5 s"
    assert [e["name"] for e in tool.events] == ["exception"]
    assert tool.kind == "internal"
    assert first_chat.kind == "client"
    assert root.resource["service.name"] == AGENT
    assert 0 <= first_chat.duration_s < 5
    assert first_chat.start <= first_chat.end


def test_protobuf_files_as_a_single_message_or_the_collectors_length_prefixed_stream(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    with recorded() as (tracer, exporter):
        answer(tracer, "Where is my invoice?", work_item="T-9")
        spans = exporter.get_finished_spans()
    single = tmp_path / "one.pb"
    single.write_bytes(request(spans).SerializeToString())
    framed = tmp_path / "stream.bin"
    parts = [request(spans[:2]).SerializeToString(), request(spans[2:]).SerializeToString()]
    framed.write_bytes(b"".join(struct.pack(">I", len(p)) + p for p in parts))
    assert sniff_format(single) == "otlp-proto"
    assert sniff_format(framed) == "otlp-proto"
    report = ingest([single, framed], tmp_path / "results", masking=masking)
    assert [f.records for f in report.files] == [5, 5]
    assert len(ResultsStore(tmp_path / "results").spans()) == 5


def test_a_single_pretty_printed_request_and_gzipped_files_are_read(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    with recorded() as (tracer, exporter):
        answer(tracer, "Where is my invoice?", work_item="T-9")
        message = request(exporter.get_finished_spans())
    pretty = tmp_path / "export.json"
    pretty.write_text(json.dumps(collector_json(message), indent=2))
    zipped = tmp_path / "export.jsonl.gz"
    zipped.write_bytes(gzip.compress(collector_file_lines(message).encode()))
    assert sniff_format(pretty) == sniff_format(zipped) == "otlp-json"
    report = ingest([pretty, zipped], tmp_path / "results", masking=masking)
    assert [f.records for f in report.files] == [5, 5]
    assert report.ok


def test_a_file_ends_on_a_chunk_boundary_and_is_still_ingested_once(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = agent_file(tmp_path, n=2)  # 10 spans
    results = tmp_path / "results"
    report = ingest([path], results, masking=masking, chunk_size=5)
    assert report.files[0].records == 10
    batches = {r.batch_id for r in ResultsStore(results).ingests()}
    assert len(batches) >= 2  # written in chunks ...
    assert (
        ingest([path], results, masking=masking, chunk_size=5).files[0].status == "already ingested"
    )


# -- attribute conventions ------------------------------------------------------------------------


def stored(
    tmp_path: Path, masking: TelemetryMasker, *spans: dict[str, Any], service: str = AGENT
) -> list[Any]:
    path = write(tmp_path, "t.jsonl", otlp_line(*spans, service=service))
    report = ingest([path], tmp_path / "results", masking=masking)
    assert report.ok, report.to_dict()
    return ResultsStore(tmp_path / "results").spans()


def test_openinference_attributes_are_read_like_genai_ones(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    llm = span(
        span_id="1" * 16,
        attributes=[
            attr("openinference.span.kind", "LLM"),
            attr("llm.model_name", "claude-haiku-4-5"),
            attr("llm.token_count.prompt", 120),
            attr("llm.token_count.completion", 15),
            attr("session.id", "s-9"),
            attr("llm.input_messages.0.message.role", "system"),
            attr("llm.input_messages.0.message.content", "You are a billing assistant."),
            attr("llm.input_messages.1.message.role", "user"),
            attr("llm.input_messages.1.message.contents.0.message_content.type", "text"),
            attr("llm.input_messages.1.message.contents.0.message_content.text", "Refund me"),
            attr("llm.output_messages.0.message.role", "assistant"),
            attr("llm.output_messages.0.message.content", "Done."),
            attr("metadata", '{"tier": "gold"}'),
        ],
    )
    retriever = span(
        span_id="2" * 16,
        name="retrieve",
        attributes=[
            attr("openinference.span.kind", "RETRIEVER"),
            attr("input.value", "refund policy"),
            attr("retrieval.documents.0.document.id", "d1"),
            attr("retrieval.documents.0.document.content", "Refunds take 5 days."),
            attr("retrieval.documents.1.document.content", "Plans renew monthly."),
        ],
    )
    tool = span(
        span_id="3" * 16,
        name="lookup",
        attributes=[
            attr("openinference.span.kind", "TOOL"),
            attr("tool.name", "lookup_invoice"),
            attr("tool.parameters", '{"type": "object"}'),
            attr("input.value", '{"invoice": "INV-7"}'),
            attr("output.value", '{"status": "open"}'),
        ],
    )
    chain = span(
        span_id="4" * 16, name="chain", attributes=[attr("openinference.span.kind", "CHAIN")]
    )
    by_id = {s.span_id: s for s in stored(tmp_path, masking, llm, retriever, tool, chain)}
    first = by_id["1" * 16]
    assert (first.operation, first.openinference_kind, first.model) == (
        "chat",
        "LLM",
        "claude-haiku-4-5",
    )
    assert (first.input_tokens, first.output_tokens, first.conversation_id) == (120, 15, "s-9")
    assert first.input_text == "Refund me"
    assert first.output_text == "Done."
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    assert first.attributes == {"metadata": '{"tier": "gold"}', "otel.scope.name": "t"}
    assert by_id["2" * 16].operation == "retrieval"
    assert by_id["2" * 16].input_text == "refund policy"
    assert by_id["2" * 16].documents == ("Refunds take 5 days.", "Plans renew monthly.")
    # OpenInference's tool.parameters is the tool's schema; a TOOL span's arguments are its input.
    assert by_id["3" * 16].tool_arguments == '{"invoice": "INV-7"}'
    assert by_id["3" * 16].attributes["tool.parameters"] == '{"type": "object"}'
    assert by_id["3" * 16].output_text == '{"status": "open"}'
    assert by_id["4" * 16].operation == "chain"


@pytest.mark.parametrize(
    ("attributes", "events", "expected_in", "expected_out"),
    [
        pytest.param(
            [attr("gen_ai.prompt", "What is my balance?"), attr("gen_ai.completion", "It is 0.")],
            [],
            "What is my balance?",
            "It is 0.",
            id="legacy gen_ai.prompt/completion",
        ),
        pytest.param(
            [
                attr("gen_ai.prompt.0.role", "user"),
                attr("gen_ai.prompt.0.content", "Cancel my plan"),
                attr("gen_ai.completion.0.role", "assistant"),
                attr("gen_ai.completion.0.content", "Cancelled."),
            ],
            [],
            "Cancel my plan",
            "Cancelled.",
            id="indexed gen_ai.prompt.N",
        ),
        pytest.param(
            [],
            [
                {
                    "name": "gen_ai.client.inference.operation.details",
                    "timeUnixNano": str(T0),
                    "attributes": [
                        attr(
                            "gen_ai.input.messages",
                            json.dumps(
                                [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
                            ),
                        ),
                        attr(
                            "gen_ai.output.messages",
                            json.dumps(
                                [
                                    {
                                        "role": "assistant",
                                        "parts": [{"type": "text", "content": "Hello"}],
                                    }
                                ]
                            ),
                        ),
                    ],
                }
            ],
            "Hi",
            "Hello",
            id="operation details event",
        ),
        pytest.param(
            [],
            [
                {"name": "gen_ai.user.message", "attributes": [attr("content", "Refund please")]},
                {
                    "name": "gen_ai.choice",
                    "attributes": [
                        {
                            "key": "message",
                            "value": {
                                "kvlistValue": {
                                    "values": [
                                        attr("role", "assistant"),
                                        attr("content", "Refunded."),
                                    ]
                                }
                            },
                        }
                    ],
                },
            ],
            "Refund please",
            "Refunded.",
            id="per-message events",
        ),
        pytest.param(
            [
                {
                    "key": "gen_ai.input.messages",
                    "value": {
                        "arrayValue": {
                            "values": [
                                {
                                    "kvlistValue": {
                                        "values": [
                                            attr("role", "user"),
                                            {
                                                "key": "parts",
                                                "value": {
                                                    "arrayValue": {
                                                        "values": [
                                                            {
                                                                "kvlistValue": {
                                                                    "values": [
                                                                        attr("type", "text"),
                                                                        attr(
                                                                            "content", "Structured"
                                                                        ),
                                                                    ]
                                                                }
                                                            }
                                                        ]
                                                    }
                                                },
                                            },
                                        ]
                                    }
                                }
                            ]
                        }
                    },
                }
            ],
            [],
            "Structured",
            None,
            id="structured (non-string) messages",
        ),
    ],
)
def test_message_conventions(
    tmp_path: Path,
    masking: TelemetryMasker,
    attributes: list[dict[str, Any]],
    events: list[dict[str, Any]],
    expected_in: str,
    expected_out: str | None,
) -> None:
    (got,) = stored(tmp_path, masking, span(attributes=attributes, events=events))
    assert (got.input_text, got.output_text) == (expected_in, expected_out)
    assert got.events == []  # message events are read into the columns, not kept twice


def test_the_agent_comes_from_the_span_else_its_trace_else_the_service(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    named = span(span_id="1" * 16, attributes=[attr("gen_ai.agent.name", "returns-concierge")])
    child = span(span_id="2" * 16, parentSpanId="1" * 16)
    other_trace = span(trace="c" * 32, span_id="3" * 16)
    got = {
        s.span_id: s.agent
        for s in stored(tmp_path, masking, named, child, other_trace, service="Billing Assistant")
    }
    assert got == {
        "1" * 16: "returns-concierge",
        "2" * 16: "returns-concierge",
        "3" * 16: "billing-assistant",
    }


def test_base64_ids_enum_names_and_snake_case_keys_are_accepted(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    line = json.dumps(
        {
            "resource_spans": [
                {
                    "scope_spans": [
                        {
                            "spans": [
                                {
                                    "trace_id": "qqqqqqqqqqqqqqqqqqqqqg==",
                                    "span_id": "u7u7u7u7u7s=",
                                    "name": "x",
                                    "kind": "SPAN_KIND_SERVER",
                                    "start_time_unix_nano": T0,
                                    "end_time_unix_nano": T0 + 5,
                                    "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    )
    report = ingest([write(tmp_path, "t.jsonl", line)], tmp_path / "results", masking=masking)
    assert report.ok
    (got,) = ResultsStore(tmp_path / "results").spans()
    assert (got.trace_id, got.span_id) == ("aa" * 16, "bb" * 8)
    assert (got.kind, got.status, got.status_message, got.agent) == (
        "server",
        "error",
        "boom",
        "unknown",
    )


# -- bad input ------------------------------------------------------------------------------------


def test_bad_spans_are_named_by_line_and_field_and_good_ones_are_kept(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    good = span(span_id="1" * 16)
    lines = [
        otlp_line(good, span(span_id="2" * 16, traceId="xyz")),
        otlp_line(span(span_id="3" * 16, startTimeUnixNano="yesterday")),
        otlp_line(span(span_id=None), span(span_id="4" * 16, endTimeUnixNano=str(T0 - 1))),
        otlp_line(span(trace="0" * 32, span_id="5" * 16)),
        otlp_line(
            span(
                span_id="6" * 16,
                attributes=[
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "many"}},
                    {"key": "odd", "value": {"mysteryValue": 1}},
                    {"key": "bare", "value": "not an AnyValue"},
                    attr("gen_ai.usage.output_tokens", "twelve"),
                    "not even an object",
                ],
            )
        ),
        '{"resourceSpans": "nope"}',
        '{"hello": "world"}',
        "[1, 2",
        otlp_line(span(span_id="7" * 16)),
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "aaaa',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines))  # the last line has no newline: a truncated file
    results = tmp_path / "results"
    report = ingest([path], results, masking=masking).files[0]
    s = "field 'resourceSpans.0.scopeSpans.0.spans"
    expected = [
        (
            "line 1",
            f"{s}.1.traceId'",
            "'xyz': a trace id is 32 hex digits in a string; span left out",
        ),
        (
            "line 2",
            f"{s}.0.startTimeUnixNano'",
            "'yesterday' is not a number of nanoseconds since 1970; span left out",
        ),
        (
            "line 3",
            f"{s}.0.spanId'",
            "required (a span id is 16 hex digits in a string); span left out",
        ),
        ("line 3", f"{s}.1.endTimeUnixNano'", "is before startTimeUnixNano; span left out"),
        ("line 4", f"{s}.0.traceId'", "is all zeros, which is not a valid trace id; span left out"),
        (
            "line 5",
            f"{s}.0.attributes.0'",
            "attribute 'gen_ai.usage.input_tokens': intValue 'many' is not a whole number; left out",
        ),
        (
            "line 5",
            f"{s}.0.attributes.1'",
            "attribute 'odd': unknown value kind 'mysteryValue'; left out",
        ),
        (
            "line 5",
            f"{s}.0.attributes.2'",
            "attribute 'bare': is a string, not an OTLP AnyValue object; left out",
        ),
        ("line 5", f"{s}.0.attributes.4'", "is not a {key, value} object; left out"),
        (
            "line 5",
            f"{s}.0.attributes'",
            "attribute 'gen_ai.usage.output_tokens': expected a whole number of tokens, got 'twelve'; left out",
        ),
        ("line 6", None, "resourceSpans is a string, not a list"),
        ("line 7", None, "has no resourceSpans: not an OTLP traces request"),
        ("line 8", None, "invalid JSON: unexpected end of data at column 6"),
        (
            "line 10",
            None,
            "invalid JSON: unexpected end of data at column 64 (the file ends mid-line: truncated?)",
        ),
    ]
    assert [(p.field, p.message) for p in report.problems] == [
        (f"{line}: {field}" if field else line, message) for line, field, message in expected
    ]
    assert {p.file for p in report.problems} == {str(path)}
    assert report.records == 3
    assert report.rejected == 5
    assert report.status == "ingested"  # the good spans are stored; the file counts as read
    assert ingest([path], results, masking=masking).files[0].status == "already ingested"
    assert sorted(s.span_id for s in ResultsStore(results).spans()) == [
        "1" * 16,
        "6" * 16,
        "7" * 16,
    ]


def test_a_time_of_digits_that_are_not_ascii_is_refused_not_a_crash(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    # "²" and "١" are digits to str.isdigit but not to a number of nanoseconds.
    line = otlp_line(
        span(span_id="1" * 16, startTimeUnixNano="1²"),
        span(span_id="2" * 16, endTimeUnixNano=str(T0 + 10**9) + "١"),
        span(span_id="3" * 16),
    )
    report = ingest([write(tmp_path, "t.jsonl", line)], tmp_path / "results", masking=masking)
    (found,) = report.files
    assert (found.records, found.rejected) == (1, 2)
    assert [(p.field, p.message) for p in found.problems] == [
        (
            "line 1: field 'resourceSpans.0.scopeSpans.0.spans.0.startTimeUnixNano'",
            "'1²' is not a number of nanoseconds since 1970; span left out",
        ),
        (
            "line 1: field 'resourceSpans.0.scopeSpans.0.spans.1.endTimeUnixNano'",
            f"'{T0 + 10**9}١' is not a number of nanoseconds since 1970; span left out",
        ),
    ]


def test_a_file_that_is_all_bad_stores_nothing_and_says_so(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = write(tmp_path, "bad.jsonl", '{"resourceSpans": [{"scopeSpans": [{"spans": [{}]}]}]}')
    report = ingest([path], tmp_path / "results", masking=masking)
    assert not report.ok
    assert report.files[0].status == "failed"
    assert report.files[0].records == 0
    assert not (tmp_path / "results" / "spans").exists()


def test_missing_files_and_unknown_formats_stop_before_anything_is_ingested(tmp_path: Path) -> None:
    good = agent_file(tmp_path, n=1)
    mystery = tmp_path / "mystery.bin"
    mystery.write_bytes(b"\x00\x01\x02 not anything")
    with pytest.raises(UserError) as missing:
        ingest([good, tmp_path / "nope.jsonl"], tmp_path / "results")
    assert [p.message for p in missing.value.problems] == ["file not found"]
    with pytest.raises(UserError, match="cannot tell the format; pass --format"):
        ingest([good, mystery], tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_a_batch_whose_writer_died_before_its_commit_record_is_not_read(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = agent_file(tmp_path, n=1)
    results = tmp_path / "results"
    ingest([path], results, masking=masking)
    for record in (results / "ingests").rglob("*.parquet"):
        record.unlink()  # as if the process died between the data files and the commit
    store = ResultsStore(results)
    assert store.spans() == []
    assert store.table("spans").num_rows == 0
    assert (
        store.ingested(ingest([path], tmp_path / "other", masking=masking).files[0].sha256 or "")
        is None
    )
    assert ingest([path], results, masking=masking).files[0].records == 5  # read again, once
    assert len(store.spans()) == 5


def test_worker_processes_read_a_large_file_as_one_process_would(
    tmp_path: Path, masking: TelemetryMasker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.telemetry import _ingest

    path = agent_file(tmp_path, n=6)  # 30 spans in two requests
    bad = otlp_line(span(span_id="9" * 16, traceId="nope"))
    path.write_text(path.read_text() + bad + "\n" + path.read_text().splitlines()[0] + "\n")
    monkeypatch.setattr(_ingest, "PARALLEL_BYTES", 1)  # every file is "large"
    monkeypatch.setattr(_ingest, "BLOCK_BYTES", 1)  # a block per line
    one = ingest([path], tmp_path / "one", masking=masking).files[0]
    two = ingest([path], tmp_path / "two", masking=masking, workers=2).files[0]
    assert (two.rejected, two.problem_count) == (one.rejected, one.problem_count) == (1, 1)
    # The repeated request is a duplicate within one chunk, and stored again by another worker:
    # either way each span is read back once.
    assert (one.records, one.duplicates) == (30, 15)
    assert (two.records, two.duplicates) == (45, 0)
    assert [str(p) for p in two.problems] == [str(p) for p in one.problems]
    assert two.problems[0].field.startswith(
        "line 3: field 'resourceSpans.0.scopeSpans.0.spans.0.traceId'"
    )
    stored = [ResultsStore(tmp_path / name).spans() for name in ("one", "two")]
    assert len(stored[1]) == 30
    assert [(s.trace_id, s.span_id, s.agent, s.input_text) for s in stored[1]] == [
        (s.trace_id, s.span_id, s.agent, s.input_text) for s in stored[0]
    ]
    assert (
        ingest([path], tmp_path / "two", masking=masking, workers=2).files[0].status
        == "already ingested"
    )


def test_worker_processes_mask_an_agent_without_a_contract_from_a_relative_policies_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the CLI calls it: ``--policies policies`` relative to the working directory, and an
    # agent with no contract there, masked with the default packs in every worker.
    from evals.telemetry import _ingest

    path = agent_file(tmp_path, n=2)
    path.write_text(path.read_text().replace(AGENT, "no-contract-here"))
    monkeypatch.setattr(_ingest, "PARALLEL_BYTES", 1)
    monkeypatch.chdir(POLICIES.parent)
    masking = TelemetryMasker("policies", default_packs=["rules/default.yaml"])
    report = ingest([path], tmp_path / "results", masking=masking, workers=2)
    assert report.ok, report.to_dict()
    assert report.files[0].agents == {"no-contract-here": 10}
