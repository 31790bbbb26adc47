"""Production traces for online-eval tests, made with the real OpenTelemetry SDK.

A support agent answers questions: it retrieves passages, asks a model, may call tools, and
may delegate to a sub-agent (``invoke_agent`` under ``invoke_agent``) that calls tools of its
own. Each trace is written with explicit times, so a test knows which window holds it, and
exported as the OpenTelemetry Collector's file exporter writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from examples.telemetry._traces import SeededIds
from tests.otel_agent import collector_file_lines, recorded, request

DAY = datetime(2026, 11, 30, tzinfo=UTC)
"""The day the traces start on (a window ending at midnight after it holds them all)."""
UNTIL = DAY + timedelta(days=1)
PASSAGE = "Refunds go back to the original payment method within 5 business days."


@dataclass
class Trip:
    """One request to the agent and how it goes."""

    question: str
    answer: str = "Refunds go back to the original payment method within 5 business days."
    passages: list[str] = field(default_factory=lambda: [PASSAGE])
    tools: list[str] = field(default_factory=list)
    """Tools the agent itself calls."""
    delegate: str | None = None
    """A sub-agent the agent hands part of the work to."""
    delegate_tools: list[str] = field(default_factory=list)
    """Tools the sub-agent calls (depth 1)."""
    nested: str | None = None
    """A sub-sub-agent the sub-agent delegates to (calls its tools at depth 2)."""
    nested_tools: list[str] = field(default_factory=list)
    error: bool = False
    escalated: bool = False
    route: str | None = None
    model: str = "gpt-4o-mini"
    tokens: tuple[int, int] = (400, 40)
    latency_s: float = 1.5
    with_output: bool = True


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1e9)


@contextmanager
def _span(
    tracer: Tracer, name: str, start: datetime, end: datetime, **attributes: Any
) -> Iterator[Any]:
    with tracer.start_as_current_span(
        name, kind=SpanKind.INTERNAL, start_time=_ns(start), end_on_exit=False
    ) as span:
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, value)
        yield span
    span.end(end_time=_ns(end))


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _tool_calls(tracer: Tracer, tools: Sequence[str], start: datetime, step: timedelta) -> datetime:
    """One ``execute_tool`` span per tool, ``step`` long each, back to back; returns the end."""
    at = start
    for tool in tools:
        with _span(
            tracer,
            f"execute_tool {tool}",
            at,
            at + step,
            **{
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.arguments": json.dumps({"order": "A-1"}),
            },
        ):
            pass
        at += step
    return at


def _agent(
    tracer: Tracer,
    agent: str,
    tools: Sequence[str],
    start: datetime,
    end: datetime,
    below: tuple[str, list[str], str | None, list[str]] | None,
) -> None:
    with _span(
        tracer,
        f"invoke_agent {agent}",
        start,
        end,
        **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent},
    ):
        step = (end - start) / (len(tools) + 3)
        at = _tool_calls(tracer, tools, start, step)
        if below is not None:
            name, its_tools, nested, nested_tools = below
            _agent(
                tracer,
                name,
                its_tools,
                at,
                at + step,
                (nested, nested_tools, None, []) if nested else None,
            )


def trip(tracer: Tracer, agent: str, t: Trip, start: datetime) -> None:
    """One traced request, starting at ``start``."""
    end = start + timedelta(seconds=t.latency_s)
    step = timedelta(seconds=t.latency_s / 6)
    with _span(
        tracer,
        f"invoke_agent {agent}",
        start,
        end,
        **{
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "gen_ai.input.messages": _messages("user", t.question),
            "gen_ai.output.messages": (
                _messages("assistant", t.answer) if t.with_output and not t.error else None
            ),
            "impactgate.route": t.route,
            "impactgate.escalated": True if t.escalated else None,
        },
    ) as root:
        if t.passages:
            with _span(
                tracer,
                "retrieval help-centre",
                start,
                start + step,
                **{
                    "gen_ai.operation.name": "retrieval",
                    "gen_ai.retrieval.query.text": t.question,
                    "gen_ai.retrieval.documents": json.dumps(
                        [{"id": f"p{i}", "content": p} for i, p in enumerate(t.passages)]
                    ),
                },
            ):
                pass
        with _span(
            tracer,
            f"chat {t.model}",
            start + step,
            start + 2 * step,
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": t.model,
                "gen_ai.usage.input_tokens": t.tokens[0],
                "gen_ai.usage.output_tokens": t.tokens[1],
                "gen_ai.input.messages": _messages("user", t.question),
            },
        ):
            pass
        if t.tools or t.delegate:
            _agent_tools_and_delegate(tracer, agent, t, start + 2 * step, start + 5 * step)
        if t.error:
            root.set_status(Status(StatusCode.ERROR, "the model provider timed out"))
            root.set_attribute("error.type", "TimeoutError")


def _agent_tools_and_delegate(
    tracer: Tracer, agent: str, t: Trip, start: datetime, end: datetime
) -> None:
    step = (end - start) / (len(t.tools) + 2)
    at = _tool_calls(tracer, t.tools, start, step)
    if t.delegate:
        _agent(
            tracer,
            t.delegate,
            t.delegate_tools,
            at,
            end,
            (t.nested, t.nested_tools, None, []) if t.nested else None,
        )


def spans_of(agent: str, trips: Sequence[tuple[Trip, datetime]]) -> list[ReadableSpan]:
    """Every span of the given requests, as the SDK finished them.

    Ids are seeded (as the example agents' are) by the agent, the request's start and
    question: the SDK's own are random on every run, and a seeded sample ranks traces by id,
    so the same requests get the same ids on every run, and requests at other times others.
    """
    ids = SeededIds()
    with recorded(service=agent, ids=ids) as (tracer, exporter):
        for i, (t, start) in enumerate(trips):
            ids.reseed(f"{agent}|{start.isoformat()}|{i}|{t.question}")
            trip(tracer, agent, t, start)
        return list(exporter.get_finished_spans())


def write_traces(
    path: Path, agent: str, trips: Sequence[Trip], *, start: datetime = DAY, every_s: float = 60
) -> Path:
    """The requests as a Collector file, one every ``every_s`` seconds from ``start``."""
    timed = [(t, start + timedelta(seconds=i * every_s)) for i, t in enumerate(trips)]
    spans = spans_of(agent, timed)
    path.write_text(collector_file_lines(request(spans)), encoding="utf-8")
    return path
