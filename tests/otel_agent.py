"""A small agent instrumented with the real OpenTelemetry SDK, and OTLP encodings of its spans.

The agent answers a billing question the way the example agents do: it retrieves passages,
asks a model (which asks for a tool), calls the tool, and asks the model again. Every step is
a span with the OpenTelemetry GenAI attributes an instrumentation sets (``gen_ai.*``), and
the agent's own span names its work item (``impactgate.work_item.id``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

AGENT = "billing-assistant"
PASSAGES = [
    "Duplicate charges are refunded to the original card within 5 business days.",
    "Invoices can be downloaded from Billing > Invoices in the admin console.",
]


def provider(
    *exporters: SpanExporter, service: str = AGENT, ids: IdGenerator | None = None
) -> TracerProvider:
    """A tracer provider for the agent's service, exporting synchronously to ``exporters``."""
    tracer_provider = TracerProvider(
        resource=Resource.create({"service.name": service}), id_generator=ids
    )
    for exporter in exporters:
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def answer(
    tracer: Tracer,
    question: str,
    *,
    work_item: str,
    conversation: str = "conv-1",
    fail_tool: bool = False,
) -> str:
    """Answer one question, tracing every step with GenAI attributes."""
    with tracer.start_as_current_span(f"invoke_agent {AGENT}", kind=SpanKind.INTERNAL) as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("gen_ai.agent.name", AGENT)
        span.set_attribute("gen_ai.conversation.id", conversation)
        span.set_attribute("impactgate.work_item.id", work_item)
        with tracer.start_as_current_span("retrieval help-centre", kind=SpanKind.CLIENT) as step:
            step.set_attribute("gen_ai.operation.name", "retrieval")
            step.set_attribute("gen_ai.data_source.id", "help-centre")
            step.set_attribute("gen_ai.retrieval.query.text", question)
            step.set_attribute(
                "gen_ai.retrieval.documents",
                json.dumps(
                    [
                        {"id": f"p{i}", "score": 0.9 - i / 10, "content": p}
                        for i, p in enumerate(PASSAGES)
                    ]
                ),
            )
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as step:
            step.set_attribute("gen_ai.operation.name", "chat")
            step.set_attribute("gen_ai.provider.name", "openai")
            step.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            step.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
            step.set_attribute("gen_ai.response.id", f"chatcmpl-{work_item}")
            step.set_attribute("gen_ai.usage.input_tokens", 812)
            step.set_attribute("gen_ai.usage.output_tokens", 24)
            step.set_attribute("gen_ai.input.messages", _messages("user", question))
            step.set_attribute(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "id": "call_1",
                                    "name": "lookup_invoice",
                                    "arguments": {"invoice": "INV-1042"},
                                }
                            ],
                            "finish_reason": "tool_call",
                        }
                    ]
                ),
            )
        with tracer.start_as_current_span("execute_tool lookup_invoice") as step:
            step.set_attribute("gen_ai.operation.name", "execute_tool")
            step.set_attribute("gen_ai.tool.name", "lookup_invoice")
            step.set_attribute("gen_ai.tool.call.id", "call_1")
            step.set_attribute("gen_ai.tool.call.arguments", json.dumps({"invoice": "INV-1042"}))
            if fail_tool:
                error = TimeoutError("the billing API did not answer in 5 s")
                step.record_exception(error)
                step.set_status(Status(StatusCode.ERROR, str(error)))
                step.set_attribute("error.type", "TimeoutError")
            else:
                step.set_attribute("gen_ai.tool.call.result", json.dumps({"status": "paid twice"}))
        reply = "You were charged twice; the duplicate is refunded within 5 business days."
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as step:
            step.set_attribute("gen_ai.operation.name", "chat")
            step.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            step.set_attribute("gen_ai.usage.input_tokens", 901)
            step.set_attribute("gen_ai.usage.output_tokens", 31)
            step.set_attribute("gen_ai.input.messages", _messages("user", question))
            step.set_attribute("gen_ai.output.messages", _messages("assistant", reply))
        return reply


@contextmanager
def recorded(
    service: str = AGENT, ids: IdGenerator | None = None
) -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    """A tracer whose finished spans stay in memory (to encode them as a file would)."""
    exporter = InMemorySpanExporter()
    tracer_provider = provider(exporter, service=service, ids=ids)
    try:
        yield tracer_provider.get_tracer("billing-agent", "1.0"), exporter
    finally:
        tracer_provider.shutdown()


def request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` the OTLP exporters send for these spans."""
    return encode_spans(spans)


def collector_json(message: ExportTraceServiceRequest) -> dict[str, Any]:
    """The request as OTLP/JSON, as the Collector's file exporter writes a line of it.

    Ids in hex (not protobuf JSON's base64), enums as integers, lowerCamelCase keys.
    """
    data: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)

    def fix(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(item, str):
                    value[key] = base64.b64decode(item).hex()
                else:
                    fix(item)
        elif isinstance(value, list):
            for item in value:
                fix(item)

    fix(data)
    return data


def collector_file_lines(*messages: ExportTraceServiceRequest) -> str:
    """A Collector ``file`` exporter's output: one JSON request a line."""
    return "".join(json.dumps(collector_json(m), separators=(",", ":")) + "\n" for m in messages)
