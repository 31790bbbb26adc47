"""Agent trajectories: the tool calls an agent made, read from wherever they were recorded.

A tool call is a dict. Two shapes are understood:

- ``{"name": "refund", "arguments": {...} or "<JSON text>", "depth": 1}`` — ``depth`` is the
  recursion or delegation level (0 or absent: the agent itself; 1: a sub-agent it delegated
  to; …);
- the OpenAI/litellm shape ``{"type": "function", "function": {"name": ..., "arguments":
  "<JSON text>"}}``, which live targets record as they receive it.

Either shape may name the ``agent`` that made the call and the trace ``span_id`` it was
recorded in (a trajectory read from production traces, ``evals.online``); a violation of a
call then names both.

Calls come from ``Output.tool_calls`` (live targets record them there) and otherwise from
``Case.metadata["tool_calls"]`` (a recorded trajectory in a golden dataset).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ToolCall", "normalise_tool_calls"]


@dataclass(frozen=True)
class ToolCall:
    """One tool call in a trajectory."""

    name: str
    """The tool's name (empty when the record had none)."""
    arguments: Any
    """Parsed arguments (a dict for well-formed calls); ``None`` when absent."""
    depth: int
    """Recursion or delegation level: 0 for the agent's own calls."""
    parse_error: str | None = None
    """Why the arguments could not be read as JSON, when they could not."""
    depth_error: str | None = None
    """Why the recorded depth is not a level (a depth limit then flags the call)."""
    agent: str | None = None
    """The agent that made the call, when the trajectory says (a production trace)."""
    span_id: str | None = None
    """The trace span that recorded the call, when the trajectory comes from a trace."""


def _one(raw: Any) -> ToolCall:
    if not isinstance(raw, dict):
        return ToolCall("", None, 0, f"a tool call must be an object, got {type(raw).__name__}")
    function = raw.get("function")
    source = function if isinstance(function, dict) else raw
    name = source.get("name") or raw.get("name") or raw.get("tool") or ""
    arguments = source.get("arguments", source.get("args", source.get("input")))
    error = None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            error = f"arguments are not valid JSON ({exc.msg} at character {exc.pos})"
            arguments = None
    depth, depth_error = _depth(raw.get("depth", 0))
    agent, span_id = raw.get("agent"), raw.get("span_id")
    return ToolCall(
        str(name),
        arguments,
        depth,
        error,
        depth_error,
        str(agent) if agent is not None else None,
        str(span_id) if span_id is not None else None,
    )


def _depth(raw: Any) -> tuple[int, str | None]:
    """A recorded depth as a level: whole numbers, also written as text ("2") or 2.0."""
    value: Any = raw
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, None
    return 0, f"depth {raw!r} is not a whole number of levels (0 or more)"


def normalise_tool_calls(raw: Sequence[Any] | None) -> tuple[ToolCall, ...]:
    """Tool calls in either recorded shape as :class:`ToolCall` records."""
    return tuple(_one(r) for r in raw or ())
