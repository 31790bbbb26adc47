"""Messages, documents and tool calls inside a span, in every shape instrumentations send.

- OpenTelemetry GenAI: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
  ``gen_ai.system_instructions`` (JSON text or structured values: ``[{"role", "parts":
  [{"type": "text", "content"} | {"type": "tool_call", "name", "arguments"} | …]}]``), the
  same on a ``gen_ai.client.inference.operation.details`` event, the older per-message events
  (``gen_ai.user.message``, ``gen_ai.choice`` …) and ``gen_ai.prompt`` /
  ``gen_ai.completion`` (plain or indexed ``gen_ai.prompt.0.content``);
  ``gen_ai.retrieval.documents`` / ``gen_ai.retrieval.query.text``;
  ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``.
- OpenInference: ``llm.input_messages.N.message.role|content|contents.M.message_content.text
  |tool_calls.K.tool_call.function.name|arguments``, ``llm.output_messages…``,
  ``llm.prompts.N.prompt.text``, ``llm.choices.N.completion.text``, ``input.value`` /
  ``output.value``, ``retrieval.documents.N.document.content``.

The span's own attributes win over its events; structured GenAI messages win over
OpenInference's flattened ones. Every key read here leaves the span's other attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from evals.telemetry._names import CONTENT_PREFIXES

__all__ = ["Content", "Event", "extract_content"]

Event = tuple[str, int, dict[str, Any]]
"""A span event: name, time (Unix nanoseconds), attributes."""

Warn = Callable[[str, str], None]

_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_LEGACY_EVENTS = {
    "gen_ai.content.prompt": "gen_ai.prompt",
    "gen_ai.content.completion": "gen_ai.completion",
}
_SINGLE_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.retrieval.documents",
    "gen_ai.retrieval.query.text",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "input.value",
    "output.value",
)


_SINGLE_SET = frozenset(_SINGLE_KEYS)


def _prefix(key: str) -> str:
    """The content prefix a flattened key starts with (one of ``CONTENT_PREFIXES``)."""
    return next(p for p in CONTENT_PREFIXES if key.startswith(p))


@dataclass(slots=True)
class Content:
    """What a span was given and gave back, as read from its attributes and events."""

    input_text: str | None = None
    output_text: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    tool_arguments: str | None = None


def _json(value: Any) -> Any:
    """A JSON text parsed (instrumentations send structures as JSON strings); else as is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _text(value: Any) -> str | None:
    """A value as text: strings as they are, structures as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _parts_text(parts: list[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" or (kind is None and "content" in part):
            content = part.get("content")
            if content is None:
                content = part.get("text")
            if content is not None:
                texts.append(_text(content) or "")
        elif kind == "tool_call":
            calls.append({"name": part.get("name"), "arguments": _text(part.get("arguments"))})
        elif kind == "tool_call_response":
            response = _text(part.get("response", part.get("result")))
            if response is not None:
                texts.append(response)
    return ("\n".join(texts) if texts else None), calls


def _message(role: Any, content: Any, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": str(role) if role is not None else None}
    message["content"] = content
    if calls:
        message["tool_calls"] = calls
    return message


def _genai_messages(
    value: Any, default_role: str | None, warn: Warn, key: str
) -> list[dict[str, Any]]:
    """``gen_ai.*.messages`` (or a legacy prompt/completion list) as ``{role, content}``."""
    value = _json(value)
    if isinstance(value, str):
        return [_message(default_role, value)]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        warn(key, f"expected a list of messages, got {type(value).__name__}; left out")
        return []
    messages = []
    for item in value:
        if isinstance(item, str):
            messages.append(_message(default_role, item))
            continue
        if not isinstance(item, dict):
            continue
        role = item.get("role", default_role)
        parts = item.get("parts")
        if isinstance(parts, list):
            text, calls = _parts_text(parts)
            messages.append(_message(role, text, calls))
            continue
        content = _json(item.get("content", item.get("text")))
        if isinstance(content, list):
            text, calls = _parts_text(content)
            messages.append(_message(role, text, calls))
        else:
            messages.append(_message(role, _text(content)))
    return messages


def _instructions(value: Any, warn: Warn) -> list[dict[str, Any]]:
    value = _json(value)
    if isinstance(value, str):
        return [_message("system", value)]
    if isinstance(value, list):
        text, _ = _parts_text(value)
        return [_message("system", text)] if text is not None else []
    warn("gen_ai.system_instructions", "expected text or a list of parts; left out")
    return []


def _indexed(flat: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.N.rest = value`` attributes as one ``{rest: value}`` per index, in order."""
    items: dict[int, dict[str, Any]] = {}
    size = len(prefix)
    for key, value in flat.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[size:].partition(".")
        if index.isdigit():
            items.setdefault(int(index), {})[rest] = value
    return [items[i] for i in sorted(items)]


def _openinference_messages(flat: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    messages = []
    for item in _indexed(flat, prefix):
        content = item.get("message.content")
        if content is None:
            texts = [
                _text(v) or ""
                for k, v in sorted(item.items())
                if k.startswith("message.contents.") and k.endswith(".message_content.text")
            ]
            content = "\n".join(texts) if texts else None
        calls: dict[str, dict[str, Any]] = {}
        for k, v in item.items():
            if k.startswith("message.tool_calls."):
                index, _, rest = k[len("message.tool_calls.") :].partition(".")
                call = calls.setdefault(index, {"name": None, "arguments": None})
                if rest == "tool_call.function.name":
                    call["name"] = v
                elif rest == "tool_call.function.arguments":
                    call["arguments"] = _text(v)
        ordered = [calls[i] for i in sorted(calls, key=lambda s: int(s) if s.isdigit() else 0)]
        messages.append(_message(item.get("message.role"), _text(content), ordered))
    return messages


def _legacy_indexed(flat: dict[str, Any], prefix: str, role: str) -> list[dict[str, Any]]:
    """Indexed ``gen_ai.prompt.N.role|content`` (OpenLLMetry and early GenAI instrumentations)."""
    return [
        _message(item.get("role", role), _text(item.get("content")))
        for item in _indexed(flat, prefix)
        if "content" in item or "role" in item
    ]


def _documents(value: Any, warn: Warn, key: str) -> list[str]:
    value = _json(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        warn(key, f"expected a list of documents, got {type(value).__name__}; left out")
        return []
    documents = []
    for item in value:
        if isinstance(item, str):
            documents.append(item)
        elif isinstance(item, dict):
            content = item.get("content", item.get("text", item.get("document.content")))
            if content is not None:
                documents.append(_text(content) or "")
    return documents


def _last(messages: list[dict[str, Any]], role: str) -> str | None:
    for message in reversed(messages):
        if message.get("role") == role and message.get("content") is not None:
            return str(message["content"])
    for message in reversed(messages):
        if message.get("content") is not None:
            return str(message["content"])
    return None


def _first(messages: list[dict[str, Any]]) -> str | None:
    for message in messages:
        if message.get("content") is not None:
            return str(message["content"])
    return None


def extract_content(
    attrs: dict[str, Any], events: list[Event], openinference_kind: str | None, warn: Warn
) -> tuple[Content, list[Event]]:
    """Read (and remove) a span's content attributes; return it with the events left over.

    Args:
        attrs: the span's attributes; every content key is removed from it.
        events: the span's events; message events are read and left out of the result.
        openinference_kind: ``openinference.span.kind`` (a TOOL span's input is its
            arguments).
        warn: called with ``(attribute, message)`` for a value of an unknown shape.
    """
    single = {key: attrs.pop(key) for key in _SINGLE_SET.intersection(attrs)}
    flat = {key: attrs.pop(key) for key in [k for k in attrs if k.startswith(CONTENT_PREFIXES)]}
    if not single and not flat and not events:
        return Content(), []
    prefixes = {_prefix(k) for k in flat} if flat else set()
    kept: list[Event] = []
    event_inputs: list[dict[str, Any]] = []
    event_outputs: list[dict[str, Any]] = []
    for event in events:
        name, _, event_attrs = event
        if name == _DETAILS_EVENT:
            for key in (
                "gen_ai.input.messages",
                "gen_ai.output.messages",
                "gen_ai.system_instructions",
            ):
                if key in event_attrs:
                    single.setdefault(key, event_attrs[key])
        elif name in _LEGACY_EVENTS:
            key = _LEGACY_EVENTS[name]
            if key in event_attrs:
                single.setdefault(key, event_attrs[key])
        elif name in _MESSAGE_EVENTS:
            body = event_attrs.get("content", event_attrs.get("gen_ai.event.content"))
            event_inputs.extend(_genai_messages(body, _MESSAGE_EVENTS[name], warn, name))
        elif name == "gen_ai.choice":
            body = event_attrs.get("message", event_attrs.get("content"))
            if isinstance(body, dict) and "content" in body:
                event_outputs.append(
                    _message(body.get("role", "assistant"), _text(body["content"]))
                )
            elif body is not None:
                event_outputs.extend(_genai_messages(body, "assistant", warn, name))
        else:
            kept.append(event)

    content = Content()
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if "gen_ai.system_instructions" in single:
        inputs.extend(_instructions(single["gen_ai.system_instructions"], warn))
    if "gen_ai.input.messages" in single:
        inputs.extend(
            _genai_messages(single["gen_ai.input.messages"], "user", warn, "gen_ai.input.messages")
        )
    elif "llm.input_messages." in prefixes:
        inputs.extend(_openinference_messages(flat, "llm.input_messages."))
    elif "gen_ai.prompt" in single:
        inputs.extend(_genai_messages(single["gen_ai.prompt"], "user", warn, "gen_ai.prompt"))
    elif "gen_ai.prompt." in prefixes:
        inputs.extend(_legacy_indexed(flat, "gen_ai.prompt.", "user"))
    elif "llm.prompts." in prefixes:
        inputs.extend(
            _message("user", _text(i.get("prompt.text"))) for i in _indexed(flat, "llm.prompts.")
        )
    else:
        inputs.extend(event_inputs)
    if "gen_ai.output.messages" in single:
        outputs.extend(
            _genai_messages(
                single["gen_ai.output.messages"], "assistant", warn, "gen_ai.output.messages"
            )
        )
    elif "llm.output_messages." in prefixes:
        outputs.extend(_openinference_messages(flat, "llm.output_messages."))
    elif "gen_ai.completion" in single:
        outputs.extend(
            _genai_messages(single["gen_ai.completion"], "assistant", warn, "gen_ai.completion")
        )
    elif "gen_ai.completion." in prefixes:
        outputs.extend(_legacy_indexed(flat, "gen_ai.completion.", "assistant"))
    elif "llm.choices." in prefixes:
        outputs.extend(
            _message("assistant", _text(i.get("completion.text")))
            for i in _indexed(flat, "llm.choices.")
        )
    else:
        outputs.extend(event_outputs)
    content.messages = inputs + outputs
    content.input_text = _last(inputs, "user")
    content.output_text = _first(outputs)

    if "gen_ai.retrieval.documents" in single:
        content.documents = _documents(
            single["gen_ai.retrieval.documents"], warn, "gen_ai.retrieval.documents"
        )
    elif "retrieval.documents." in prefixes:
        content.documents = [
            _text(item["document.content"]) or ""
            for item in _indexed(flat, "retrieval.documents.")
            if item.get("document.content") is not None
        ]
    if "gen_ai.retrieval.query.text" in single:
        content.input_text = _text(single["gen_ai.retrieval.query.text"])

    arguments = single.get("gen_ai.tool.call.arguments")
    if arguments is None and openinference_kind == "TOOL":
        arguments = single.get("input.value")
    content.tool_arguments = _text(arguments)
    if "gen_ai.tool.call.result" in single:
        content.output_text = _text(single["gen_ai.tool.call.result"])

    if content.input_text is None and "input.value" in single:
        content.input_text = _text(single["input.value"])
    if content.output_text is None and "output.value" in single:
        content.output_text = _text(single["output.value"])
    return content, kept
