"""Synthetic production traces for the telemetry benchmarks, as the Collector's file exporter writes them.

Each trace is what ``tests/otel_agent.py``'s instrumented agent emits for one question: the
agent's span (``invoke_agent``, with the work item), a retrieval with two passages, a chat
that asks for a tool, the tool call, and the chat that answers: five spans with the GenAI
attributes an instrumentation sets, about 2.4 KB of OTLP JSON a span. Requests hold
``traces_per_request`` traces (one export batch, one line of the file).

How often texts repeat decides what masking costs (each distinct text is masked once), so it is
a parameter: ``distinct_questions`` questions (each with its answer) are drawn at random;
``None`` makes every question and answer unique, the worst case.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AGENTS = ("billing-assistant", "returns-concierge", "account-support")
PASSAGES = [
    f"Help-centre article {i}: refunds for duplicate charges go back to the original card "
    f"within {3 + i % 5} business days; plan changes apply from the next invoice (section {i})."
    for i in range(120)
]
SYSTEM = (
    "You are the billing assistant of Northwind Cloud. Answer from the passages only and never "
    "repeat card or account numbers."
)
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def question(rng: random.Random, number: int) -> tuple[str, str]:
    """A customer question and the agent's answer (a few carry an email or a card number)."""
    invoice = f"INV-{10_000 + number}"
    asked = (
        f"Hello, I was charged twice for {invoice} this month and my plan says monthly billing. "
        f"Can you explain why the amount is {number % 97}.00 higher and when I get the money back?"
    )
    if number % 50 == 0:
        asked += f" You can reach me at customer{number}@mail.example."
    if number % 173 == 0:
        asked += " My card is 4111 1111 1111 1111."
    answer = (
        f"I'm sorry about that. {invoice} was collected twice because the renewal retried after a "
        f"timeout; the duplicate of {number % 97}.00 is refunded to your card within "
        f"{3 + number % 5} business days."
    )
    return asked, answer


def _span(
    trace: str,
    span_id: str,
    parent: str,
    name: str,
    kind: int,
    start: int,
    attrs: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span_id,
        "parentSpanId": parent,
        "flags": 257,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 850_000_000),
        "attributes": attrs,
        "status": {},
    }


def trace(
    rng: random.Random, number: int, distinct_questions: int | None, agent: str, start: int
) -> list[dict[str, Any]]:
    """The five spans of one answered question."""
    q = number if distinct_questions is None else rng.randrange(distinct_questions)
    asked, answer = question(rng, q)
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(5)]
    root = ids[0]
    docs = [
        {"id": f"p{p}", "score": 0.8, "content": PASSAGES[p]}
        for p in rng.sample(range(len(PASSAGES)), 2)
    ]
    invoice = json.dumps({"invoice": f"INV-{10_000 + q}"})
    return [
        _span(trace_id, root, "", f"invoke_agent {agent}", 1, start, [
            _attr("gen_ai.operation.name", "invoke_agent"),
            _attr("gen_ai.agent.name", agent),
            _attr("gen_ai.conversation.id", f"conv-{number}"),
            _attr("impactgate.work_item.id", f"T-{number}"),
        ]),
        _span(trace_id, ids[1], root, "retrieval help-centre", 3, start + 1_000, [
            _attr("gen_ai.operation.name", "retrieval"),
            _attr("gen_ai.data_source.id", "help-centre"),
            _attr("gen_ai.retrieval.query.text", asked),
            _attr("gen_ai.retrieval.documents", json.dumps(docs)),
        ]),
        _span(trace_id, ids[2], root, "chat gpt-4o-mini", 3, start + 2_000, [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.request.model", "gpt-4o-mini"),
            _attr("gen_ai.response.id", f"chatcmpl-{number}a"),
            _attr("gen_ai.usage.input_tokens", 800 + q % 100),
            _attr("gen_ai.usage.output_tokens", 24),
            _attr("gen_ai.system_instructions", json.dumps([{"type": "text", "content": SYSTEM}])),
            _attr("gen_ai.input.messages", _messages("user", asked)),
            _attr("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup_invoice", "arguments": {"invoice": f"INV-{10_000 + q}"}}]}])),  # noqa: E501
        ]),
        _span(trace_id, ids[3], root, "execute_tool lookup_invoice", 1, start + 3_000, [
            _attr("gen_ai.operation.name", "execute_tool"),
            _attr("gen_ai.tool.name", "lookup_invoice"),
            _attr("gen_ai.tool.call.id", "call_1"),
            _attr("gen_ai.tool.call.arguments", invoice),
            _attr("gen_ai.tool.call.result", json.dumps({"status": "collected twice"})),
        ]),
        _span(trace_id, ids[4], root, "chat gpt-4o-mini", 3, start + 4_000, [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.request.model", "gpt-4o-mini"),
            _attr("gen_ai.response.id", f"chatcmpl-{number}b"),
            _attr("gen_ai.usage.input_tokens", 900 + q % 100),
            _attr("gen_ai.usage.output_tokens", 40),
            _attr("gen_ai.input.messages", _messages("user", asked)),
            _attr("gen_ai.output.messages", _messages("assistant", answer)),
        ]),
    ]  # fmt: skip


def requests(
    n_traces: int,
    *,
    distinct_questions: int | None,
    traces_per_request: int = 100,
    seed: int = 7,
    first: int = 0,
) -> Iterator[dict[str, Any]]:
    """OTLP/JSON export requests holding ``n_traces`` traces, spread over the three agents."""
    rng = random.Random(seed + first)
    batch: dict[str, list[dict[str, Any]]] = {}
    for number in range(first, first + n_traces):
        agent = AGENTS[number % len(AGENTS)]
        start = T0 + number * 2_000_000_000
        batch.setdefault(agent, []).extend(trace(rng, number, distinct_questions, agent, start))
        if (number - first + 1) % traces_per_request == 0:
            yield _request(batch)
            batch = {}
    if batch:
        yield _request(batch)


def _request(batch: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        _attr("service.name", agent),
                        _attr("telemetry.sdk.language", "python"),
                        _attr("telemetry.sdk.name", "opentelemetry"),
                        _attr("telemetry.sdk.version", "1.45.2"),
                    ]
                },
                "scopeSpans": [
                    {"scope": {"name": "billing-agent", "version": "1.0"}, "spans": spans}
                ],
            }
            for agent, spans in batch.items()
        ]
    }


def write_file(path: Path, n_traces: int, *, distinct_questions: int | None, first: int = 0) -> int:
    """A Collector-format file of ``n_traces`` traces; returns the number of spans."""
    with path.open("w", encoding="utf-8") as handle:
        for item in requests(n_traces, distinct_questions=distinct_questions, first=first):
            handle.write(json.dumps(item, separators=(",", ":")) + "\n")
    return 5 * n_traces
