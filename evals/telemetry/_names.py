"""The attribute names spans are read by: OpenTelemetry GenAI and OpenInference conventions.

Checked against the OpenTelemetry semantic conventions for generative AI (the
``opentelemetry-semantic-conventions`` 0.66b2 names, now maintained in the
``semantic-conventions-genai`` repository) and the OpenInference specification
(``spec/semantic_conventions.md``). Each field is read from the first name present; the name
used is taken out of the span's remaining attributes, the others stay there. The table in
docs/telemetry.md lists them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AGENT_NAME",
    "CONTENT_PREFIXES",
    "CONVERSATION_ID",
    "ERROR_TYPE",
    "INPUT_TOKENS",
    "MODEL",
    "NOT_PERSONAL",
    "OPENINFERENCE_OPERATIONS",
    "OPENINFERENCE_SPAN_KIND",
    "OPERATION_NAME",
    "OUTPUT_TOKENS",
    "PROVIDER",
    "SERVICE_NAME",
    "SPAN_KINDS",
    "STATUS_CODES",
    "TOOL_NAME",
    "WORK_ITEM_ATTRIBUTE",
]

WORK_ITEM_ATTRIBUTE: Final = "impactgate.work_item.id"
"""The span (or resource) attribute that links a span to the work item it worked on."""

SERVICE_NAME: Final = "service.name"
AGENT_NAME: Final = ("gen_ai.agent.name", "agent.name")
OPERATION_NAME: Final = "gen_ai.operation.name"
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
MODEL: Final = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.response.model_name",
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
)
PROVIDER: Final = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_TOKENS: Final = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKENS: Final = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CONVERSATION_ID: Final = ("gen_ai.conversation.id", "session.id")
TOOL_NAME: Final = ("gen_ai.tool.name", "tool.name")
ERROR_TYPE: Final = "error.type"

OPENINFERENCE_OPERATIONS: Final = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "RETRIEVER": "retrieval",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
}
"""OpenInference span kinds in ``gen_ai.operation.name``'s words; the others are lower-cased
(``CHAIN`` → ``chain``)."""

CONTENT_PREFIXES: Final = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "retrieval.documents.",
)
"""Flattened (indexed) attributes that carry messages or documents: read into the text
columns, never kept among the other attributes."""

NOT_PERSONAL: Final = frozenset(
    {
        "gen_ai.response.id",
        "gen_ai.response.finish_reasons",
        "gen_ai.tool.call.id",
        "gen_ai.tool.type",
        "gen_ai.output.type",
        "gen_ai.data_source.id",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "llm.model_name",
        "llm.invocation_parameters",
        "input.mime_type",
        "output.mime_type",
        "openinference.span.kind",
        "telemetry.sdk.name",
        "telemetry.sdk.language",
        "telemetry.sdk.version",
        "otel.scope.name",
        "otel.scope.version",
        "service.version",
    }
)
"""Attributes that hold identifiers and settings, never personal data: left unmasked, which
keeps masking to the texts that can hold some (an id unique to every span would otherwise be
masked once per span)."""

SPAN_KINDS: Final = ("unspecified", "internal", "server", "client", "producer", "consumer")
"""``Span.kind`` by its enum value."""

STATUS_CODES: Final = ("unset", "ok", "error")
"""``Status.code`` by its enum value."""
