"""The example agents instrumented with the OpenTelemetry SDK: one trace per handled item.

Each agent's spans are what its instrumentation would record when it handles a ticket, with
explicit start and end times (the ticket's history, not the clock) and ids from a generator
seeded by the ticket, so the same ticket always gives the same trace:

- billing-assistant and account-support follow the OpenTelemetry GenAI semantic conventions
  (``gen_ai.operation.name`` ``invoke_agent`` / ``retrieval`` / ``chat`` / ``execute_tool``,
  ``gen_ai.usage.*``, ``gen_ai.input.messages`` …, ``error.type`` on failures);
- returns-concierge follows OpenInference, as Phoenix/Arize instrumentations write it
  (``openinference.span.kind`` AGENT / RETRIEVER / LLM / TOOL, ``input.value``,
  ``output.value``, ``llm.input_messages.N.message.*``, ``retrieval.documents.N.document.*``,
  ``llm.token_count.*``; failures as a recorded exception and an error status).

Every span of a handled ticket carries ``impactgate.work_item.id``. About 1% of spans fail
(a retrieval or a tool call that times out or cannot connect); the agent answers without it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import SpanKind, Status, StatusCode

from examples.telemetry._story import Item, attributes_json, phone_number

__all__ = ["ERROR_RATE", "WORK_ITEM_ATTRIBUTE", "SeededIds", "Tracing", "provider"]

WORK_ITEM_ATTRIBUTE = "impactgate.work_item.id"
"""``evals.telemetry.WORK_ITEM_ATTRIBUTE``, written out: importing ``evals.telemetry`` loads the
whole store (pyarrow, DuckDB), a second of start-up for each worker process that only writes
spans. A test checks the two are the same."""

ERROR_RATE = 0.01
"""Share of spans that fail."""

_NS = 1_000_000_000
_MODEL = "gpt-4o-mini"
_RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
_SYSTEM = {
    "billing-assistant": (
        "You are Northwind Cloud's billing assistant. Be exact about amounts, dates and plan "
        "names; never invent a policy, and never repeat card numbers or account identifiers "
        "back to the customer."
    ),
    "returns-concierge": (
        "You are Fabrikam Home's returns concierge. Answer from the policy passages, start "
        "returns and exchanges with the tools, and hand over to the returns desk when unsure."
    ),
    "account-support": (
        "You are Contoso Pay's account support assistant. Never read back personal data from "
        "CRM notes; send security-sensitive requests to trust and safety."
    ),
}
_VERSIONS = {"billing-assistant": "2.3.0", "returns-concierge": "v2", "account-support": "v2"}


class SeededIds(IdGenerator):
    """Trace and span ids from a random stream that :meth:`reseed` restarts."""

    def __init__(self) -> None:
        self._rng = random.Random(0)

    def reseed(self, key: str) -> None:
        """Restart the stream from ``key`` (the ticket's seed)."""
        self._rng = random.Random(key)

    def generate_span_id(self) -> int:
        """A non-zero 64-bit id."""
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        """A non-zero 128-bit id."""
        return self._rng.getrandbits(128) or 1


def provider(agent: str, ids: IdGenerator) -> TracerProvider:
    """The agent's tracer provider: fixed resource, every span sampled, no env-driven limits."""
    resource = Resource(
        {
            "service.name": agent,
            "service.version": _VERSIONS[agent],
            "deployment.environment.name": "production",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": sdk_version,
        }
    )
    limits = SpanLimits(
        max_attributes=128,
        max_events=128,
        max_links=128,
        max_attribute_length=SpanLimits.UNSET,
        max_span_attribute_length=SpanLimits.UNSET,
    )
    return TracerProvider(
        sampler=ALWAYS_ON,
        resource=resource,
        id_generator=ids,
        span_limits=limits,
        shutdown_on_exit=False,
    )


def _tokens(text: str, rng: random.Random) -> int:
    return max(1, round(len(text) / 4 * rng.uniform(0.95, 1.05)))


def _genai_messages(role: str, text: str) -> str:
    return attributes_json([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _prompt(item: Item) -> str:
    passages = "\n".join(f"[{i}] {p}" for i, p in enumerate(item.case.contexts, start=1))
    return (
        "Answer the customer's question using only the passages below. If they do not "
        f"answer it, say so and offer to hand over to a person.\n\nPassages:\n{passages}\n\n"
        f"Question: {item.question}"
    )


_FAILURES = {
    "retrieval": (TimeoutError, "the search index did not answer within 2 s"),
    "tool": (ConnectionError, "the backend refused the connection"),
}


class Tracing:
    """Instruments one agent's handling of a ticket with a tracer of a provider."""

    def __init__(self, agent: str, tracer_provider: TracerProvider, ids: SeededIds) -> None:
        self.agent = agent
        self.ids = ids
        self.tracer = tracer_provider.get_tracer(f"examples.{agent.replace('-', '_')}", "1.0.0")
        self._handle: Callable[[Item, random.Random, int], None] = {
            "billing-assistant": self._billing,
            "returns-concierge": self._returns,
            "account-support": self._account,
        }[agent]

    def handle(self, item: Item) -> None:
        """Record the trace of the agent handling ``item`` (the spans end, and are exported)."""
        self.ids.reseed(item.seed)
        rng = random.Random(item.seed)
        pickup = round(item.opened.timestamp()) * _NS + rng.randrange(5, 90) * _NS
        self._handle(item, rng, pickup)

    # -- building blocks -----------------------------------------------------------------

    def _span(
        self,
        parent: Span | None,
        name: str,
        start: int,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=start
        )
        assert isinstance(span, Span)
        return span

    def _fails(self, rng: random.Random, spans: int, failable: int) -> bool:
        """Whether one of ``failable`` spans fails, so that ``ERROR_RATE`` of all spans do."""
        return failable > 0 and rng.random() < ERROR_RATE * spans / failable

    @staticmethod
    def _fail(span: Span, kind: str, at: int, *, genai: bool) -> None:
        error, message = _FAILURES[kind]
        exception = error(message)
        span.record_exception(exception, timestamp=at)
        span.set_status(Status(StatusCode.ERROR, message))
        if genai:
            span.set_attribute("error.type", error.__name__)

    # -- billing-assistant: OpenTelemetry GenAI -------------------------------------------

    def _billing(self, item: Item, rng: random.Random, now: int) -> None:
        tool = {
            "invoices": "lookup_invoice",
            "payments": "lookup_invoice",
            "refunds": "lookup_invoice",
            "credits": "get_account_credit",
            "plans": "get_subscription",
            "cancellation": "get_subscription",
            "ai-add-on": "get_subscription",
        }.get(item.case.category)
        spans = 3 + (1 if tool else 0) + (1 if item.escalated else 0)
        failable = 1 + (1 if tool else 0)
        root, base, now = self._genai_root(item, rng, now)
        now = self._genai_retrieval(root, item, rng, now, base, spans, failable)
        if tool:
            invoice = f"INV-{rng.randrange(10_000, 99_999)}"
            arguments = {"invoice": invoice} if tool == "lookup_invoice" else {"account": "current"}
            now = self._genai_tool(
                root,
                rng,
                now,
                base,
                tool,
                arguments,
                took_ms=(80, 900),
                result=lambda: {"status": rng.choice(["paid", "open", "refunded", "active"])},
                fails=lambda: self._fails(rng, spans, failable),
            )
        self._genai_answer(root, item, rng, now, base, "billing-specialists")

    def _genai_root(
        self, item: Item, rng: random.Random, now: int
    ) -> tuple[Span, dict[str, Any], int]:
        """The ``invoke_agent`` span, what every span carries, and when its first child starts."""
        base = {WORK_ITEM_ATTRIBUTE: item.id}
        root = self._span(
            None,
            f"invoke_agent {self.agent}",
            now,
            {
                **base,
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": self.agent,
                "gen_ai.conversation.id": f"conv-{rng.getrandbits(64):016x}",
                "gen_ai.input.messages": _genai_messages("user", item.question),
            },
        )
        return root, base, now + rng.randrange(2, 20) * 1_000_000

    def _genai_tool(
        self,
        root: Span,
        rng: random.Random,
        now: int,
        base: dict[str, Any],
        tool: str,
        arguments: dict[str, Any],
        *,
        took_ms: tuple[int, int],
        result: Callable[[], dict[str, Any]],
        fails: Callable[[], bool],
    ) -> int:
        """An ``execute_tool`` span: failed if ``fails()``, else with ``result()``; next start."""
        span = self._span(
            root,
            f"execute_tool {tool}",
            now,
            {
                **base,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):012x}",
                "gen_ai.tool.call.arguments": attributes_json(arguments),
            },
        )
        now += rng.randrange(*took_ms) * 1_000_000
        if fails():
            self._fail(span, "tool", now, genai=True)
        else:
            span.set_attribute("gen_ai.tool.call.result", attributes_json(result()))
        span.end(end_time=now)
        return now + rng.randrange(1, 10) * 1_000_000

    def _genai_answer(
        self,
        root: Span,
        item: Item,
        rng: random.Random,
        now: int,
        base: dict[str, Any],
        queue: str,
    ) -> None:
        """The model's answer, the hand-over to ``queue`` when escalated, and the root's end."""
        answer = item.case.answer
        now = self._genai_chat(root, rng, now, base, _prompt(item), answer)
        if item.escalated:
            now = self._genai_handoff(root, rng, now, base, queue)
        root.set_attribute("gen_ai.output.messages", _genai_messages("assistant", answer))
        root.end(end_time=now + rng.randrange(1, 15) * 1_000_000)

    def _genai_retrieval(
        self,
        root: Span,
        item: Item,
        rng: random.Random,
        now: int,
        base: dict[str, Any],
        spans: int,
        failable: int,
    ) -> int:
        source = "help-centre"
        span = self._span(
            root,
            f"retrieval {source}",
            now,
            {
                **base,
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": source,
                "gen_ai.retrieval.query.text": item.question,
            },
            SpanKind.CLIENT,
        )
        now += rng.randrange(40, 350) * 1_000_000
        if self._fails(rng, spans, failable):
            self._fail(span, "retrieval", now, genai=True)
        else:
            documents = [
                {"id": f"{item.case.id}#p{i}", "score": round(0.92 - 0.07 * i, 2), "content": text}
                for i, text in enumerate(item.case.contexts)
            ]
            span.set_attribute("gen_ai.retrieval.documents", attributes_json(documents))
        span.end(end_time=now)
        return now + rng.randrange(1, 10) * 1_000_000

    def _genai_chat(
        self,
        root: Span,
        rng: random.Random,
        now: int,
        base: dict[str, Any],
        prompt: str,
        answer: str,
    ) -> int:
        system = _SYSTEM[self.agent]
        completion = _tokens(answer, rng)
        span = self._span(
            root,
            f"chat {_MODEL}",
            now,
            {
                **base,
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": _MODEL,
                "gen_ai.response.model": _RESPONSE_MODEL,
                "gen_ai.usage.input_tokens": _tokens(system + prompt, rng),
                "gen_ai.usage.output_tokens": completion,
                "gen_ai.system_instructions": attributes_json(
                    [{"type": "text", "content": system}]
                ),
                "gen_ai.input.messages": _genai_messages("user", prompt),
                "gen_ai.output.messages": _genai_messages("assistant", answer),
            },
            SpanKind.CLIENT,
        )
        now += round((0.35 + completion * 0.011 + rng.uniform(0.0, 0.6)) * _NS)
        span.end(end_time=now)
        return now + rng.randrange(1, 10) * 1_000_000

    def _genai_handoff(
        self, root: Span, rng: random.Random, now: int, base: dict[str, Any], queue: str
    ) -> int:
        call_id = f"call_{rng.getrandbits(48):012x}"
        span = self._span(
            root,
            "execute_tool escalate_to_human",
            now,
            {
                **base,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "escalate_to_human",
                "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.call.arguments": attributes_json({"queue": queue}),
                "gen_ai.tool.call.result": attributes_json({"handed_off": True}),
            },
        )
        now += rng.randrange(30, 250) * 1_000_000
        span.end(end_time=now)
        return now + rng.randrange(1, 10) * 1_000_000

    # -- account-support: OpenTelemetry GenAI, with CRM notes -----------------------------

    def _account(self, item: Item, rng: random.Random, now: int) -> None:
        spans = 4 + (1 if item.escalated else 0)
        failable = 2
        root, base, now = self._genai_root(item, rng, now)
        account = f"CP-{rng.randrange(1_000_000, 9_999_999)}"
        arguments: dict[str, Any] = {"account_id": account}
        if "email" in item.contact:
            arguments["customer_email"] = item.contact["email"]

        def notes() -> dict[str, Any]:
            phone = item.contact.get("phone") or phone_number(rng)
            history = rng.choice(["no open disputes", "one open dispute", "card replaced in March"])
            return {"notes": f"Customer verified by phone ({phone}) last month; {history}."}

        now = self._genai_tool(
            root,
            rng,
            now,
            base,
            "lookup_crm_notes",
            arguments,
            took_ms=(60, 700),
            result=notes,
            fails=lambda: self._fails(rng, spans, failable),
        )
        now = self._genai_retrieval(root, item, rng, now, base, spans, failable)
        self._genai_answer(root, item, rng, now, base, "trust-and-safety")

    # -- returns-concierge: OpenInference -------------------------------------------------

    def _returns(self, item: Item, rng: random.Random, now: int) -> None:
        agent, case = self.agent, item.case
        tool = {
            "returns": "create_return_label",
            "exchanges": "start_exchange",
            "damaged": "create_return_label",
            "shipping": "track_shipment",
            "refunds": "check_refund_status",
        }.get(case.category)
        spans = 3 + (1 if tool else 0) + (1 if item.escalated else 0)
        failable = 1 + (1 if tool else 0)
        session = f"sess-{rng.getrandbits(64):016x}"
        base = {WORK_ITEM_ATTRIBUTE: item.id, "session.id": session}
        root = self._span(
            None,
            agent,
            now,
            {
                **base,
                "openinference.span.kind": "AGENT",
                "agent.name": agent,
                "input.value": item.question,
                "input.mime_type": "text/plain",
            },
        )
        now += rng.randrange(2, 20) * 1_000_000
        span = self._span(
            root,
            "retrieve",
            now,
            {**base, "openinference.span.kind": "RETRIEVER", "input.value": item.question},
        )
        now += rng.randrange(40, 350) * 1_000_000
        if self._fails(rng, spans, failable):
            self._fail(span, "retrieval", now, genai=False)
        else:
            for i, text in enumerate(case.contexts):
                prefix = f"retrieval.documents.{i}.document"
                span.set_attribute(f"{prefix}.id", f"{case.id}#p{i}")
                span.set_attribute(f"{prefix}.score", round(0.9 - 0.06 * i, 2))
                span.set_attribute(f"{prefix}.content", text)
        span.end(end_time=now)
        now += rng.randrange(1, 10) * 1_000_000
        if tool:
            order = f"FH-{rng.randrange(100_000, 999_999)}"
            span = self._span(
                root,
                tool,
                now,
                {
                    **base,
                    "openinference.span.kind": "TOOL",
                    "tool.name": tool,
                    "input.value": attributes_json({"order_id": order}),
                    "input.mime_type": "application/json",
                },
            )
            now += rng.randrange(80, 900) * 1_000_000
            if self._fails(rng, spans, failable):
                self._fail(span, "tool", now, genai=False)
            else:
                result = {
                    "order_id": order,
                    "status": rng.choice(["created", "in_transit", "done"]),
                }
                span.set_attribute("output.value", attributes_json(result))
                span.set_attribute("output.mime_type", "application/json")
            span.end(end_time=now)
            now += rng.randrange(1, 10) * 1_000_000
        system, prompt = _SYSTEM[agent], _prompt(item)
        prompt_tokens, completion = _tokens(system + prompt, rng), _tokens(case.answer, rng)
        span = self._span(
            root,
            "ChatCompletion",
            now,
            {
                **base,
                "openinference.span.kind": "LLM",
                "llm.provider": "openai",
                "llm.model_name": _RESPONSE_MODEL,
                "llm.invocation_parameters": attributes_json({"model": _MODEL, "temperature": 0.2}),
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": system,
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": prompt,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": case.answer,
                "llm.token_count.prompt": prompt_tokens,
                "llm.token_count.completion": completion,
            },
            SpanKind.CLIENT,
        )
        now += round((0.35 + completion * 0.011 + rng.uniform(0.0, 0.6)) * _NS)
        span.end(end_time=now)
        now += rng.randrange(1, 10) * 1_000_000
        if item.escalated:
            span = self._span(
                root,
                "handoff_to_returns_desk",
                now,
                {
                    **base,
                    "openinference.span.kind": "TOOL",
                    "tool.name": "handoff_to_returns_desk",
                    "input.value": attributes_json({"reason": "needs a person"}),
                    "input.mime_type": "application/json",
                    "output.value": attributes_json({"handed_off": True}),
                    "output.mime_type": "application/json",
                },
            )
            now += rng.randrange(30, 250) * 1_000_000
            span.end(end_time=now)
        root.set_attribute("output.value", case.answer)
        root.set_attribute("output.mime_type", "text/plain")
        root.end(end_time=now + rng.randrange(1, 15) * 1_000_000)
