"""A golden case and the recorded output of an agent version."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["Case", "RecordedOutput", "Usage"]

_CONFIG = ConfigDict(
    extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank (only spaces); give some text")
    return value


Text = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]
"""Text that must say something: not empty and not only spaces."""


class Usage(BaseModel):
    """Token usage of one model call."""

    model_config = _CONFIG

    prompt_tokens: int = Field(ge=0)
    """Tokens sent to the model."""
    completion_tokens: int = Field(ge=0)
    """Tokens the model produced."""


class Case(BaseModel):
    """One golden row: what the agent is asked, what it may use, and what a good answer is."""

    model_config = _CONFIG

    id: Text
    """Unique, stable id; results and comparisons key on it."""
    input: Text
    """The request the agent receives."""
    contexts: list[str] = Field(default_factory=list)
    """Retrieved passages the answer must be grounded in."""
    reference: str | None = None
    """An ideal answer, when one exists."""
    tags: list[str] = Field(default_factory=list)
    """Labels for slicing results (topic, difficulty...)."""
    output: str | None = None
    """A recorded answer (replay target without a side file)."""
    usage: Usage | None = None
    """Token usage of the recorded answer."""
    latency_s: float | None = Field(default=None, ge=0)
    """Seconds the recorded call took."""
    cost_usd: float | None = Field(default=None, ge=0)
    """Cost of the recorded call, when the provider reported one."""
    model: str | None = None
    """Model that produced the recorded answer (prices its usage)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else worth keeping with the case."""


class RecordedOutput(BaseModel):
    """One row of a replay side file: the answer an agent version gave to a case."""

    model_config = _CONFIG

    case_id: Text
    """The case this answers."""
    version: Text
    """The agent version that gave it."""
    output: str | None = None
    """The answer; empty only when ``error`` says why."""
    contexts: list[str] | None = None
    """Passages the agent retrieved for this call, when they differ from the case's."""
    usage: Usage | None = None
    """Token usage of the call."""
    latency_s: float | None = Field(default=None, ge=0)
    """Seconds the call took."""
    cost_usd: float | None = Field(default=None, ge=0)
    """Provider-reported cost."""
    model: str | None = None
    """Model that produced it."""
    error: str | None = None
    """Why the call failed, when it did."""
