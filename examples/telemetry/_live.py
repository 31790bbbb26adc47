"""A live trace: one golden question answered through a real OpenAI-compatible endpoint.

The model call is traced by OpenInference's OpenAI instrumentation
(``openinference-instrumentation-openai``, a development dependency), not by hand: the
instrumentation wraps the ``openai`` client and records the ``LLM`` span (model, messages,
token counts) under the agent's own ``invoke_agent`` span. The work item reaches the
instrumentation's span through OpenTelemetry baggage, copied onto every span as it starts
(:class:`WorkItemFromBaggage`), which is how an agent can label spans it does not create.
The trace is written like the generated ones (:mod:`examples.telemetry._export`).
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry import baggage, context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

from evals._io import atomic_open
from examples.telemetry._export import BatchingSpanProcessor, CollectorFileExporter
from examples.telemetry._story import attributes_json, load_cases
from examples.telemetry._traces import WORK_ITEM_ATTRIBUTE, SeededIds, provider

__all__ = ["WorkItemFromBaggage", "live_trace"]


class WorkItemFromBaggage(SpanProcessor):
    """Sets ``impactgate.work_item.id`` on every span from the baggage of its context."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy the work item from the baggage, when there is one."""
        value = baggage.get_baggage(WORK_ITEM_ATTRIBUTE, parent_context)
        if value is not None:
            span.set_attribute(WORK_ITEM_ATTRIBUTE, str(value))


def live_trace(
    base_url: str,
    path: Path,
    *,
    agent: str = "billing-assistant",
    case: int = 0,
    work_item: str = "BIL-LIVE-0001",
    model: str = "gpt-4o-mini",
    api_key: str = "sk-local-test",
) -> tuple[Path, str]:
    """Answer the agent's golden case ``case`` through ``base_url``; write the trace to ``path``.

    Args:
        base_url: an OpenAI-compatible API (``http://127.0.0.1:PORT/v1``).
        path: the OTLP JSON lines file to write (gzip).
        agent: whose golden case and service name.
        case: which of its golden cases.
        work_item: the ticket the answer is for.
        model: the model asked for.
        api_key: sent as the bearer token.

    Returns:
        The file written and the model's answer.

    Raises:
        RuntimeError: the OpenInference instrumentation is not installed.
    """
    try:
        from openai import OpenAI
        from openinference.instrumentation.openai import OpenAIInstrumentor
    except ImportError as exc:
        raise RuntimeError(
            "the live trace needs openai and openinference-instrumentation-openai "
            "(pip install -e '.[dev]')"
        ) from exc
    golden = load_cases(agent)[case]
    ids = SeededIds()
    ids.reseed(work_item)
    tracer_provider = provider(agent, ids)
    tracer_provider.add_span_processor(WorkItemFromBaggage())
    instrumentor = OpenAIInstrumentor()
    with atomic_open(path, "wb") as raw:
        tracer_provider.add_span_processor(BatchingSpanProcessor(CollectorFileExporter(raw)))
        instrumentor.instrument(tracer_provider=tracer_provider)
        token = context.attach(baggage.set_baggage(WORK_ITEM_ATTRIBUTE, work_item))
        try:
            tracer = tracer_provider.get_tracer("examples.telemetry.live", "1.0.0")
            with tracer.start_as_current_span(
                f"invoke_agent {agent}",
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": agent,
                    "gen_ai.conversation.id": f"conv-{work_item}",
                },
            ) as root:
                client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=10)
                passages = "\n".join(f"[{i}] {p}" for i, p in enumerate(golden.contexts, 1))
                reply = client.chat.completions.create(
                    model=model,
                    messages=[
                        {"role": "system", "content": "Answer from the passages only."},
                        {"role": "user", "content": f"Passages:\n{passages}\n\n{golden.input}"},
                    ],
                )
                answer = reply.choices[0].message.content or ""
                root.set_attribute(
                    "gen_ai.output.messages",
                    attributes_json(
                        [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
                    ),
                )
        finally:
            context.detach(token)
            instrumentor.uninstrument()
            tracer_provider.shutdown()
    return path, answer
