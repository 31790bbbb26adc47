"""What every policy rule shares: the base classes of the rule kinds and what they read.

A rule kind is one class in ``_kinds.py``: its fields (validated with ``extra="forbid"``, so a
field of another kind is an error), its docstring (the reference in ``docs/policy.md`` is
generated from it) and its checking logic. Defining the class registers the kind; the rule-pack
model's union of kinds is built from that registry.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from evals.policy._detectors import Match, mask
from evals.policy._ner import Entity
from evals.policy._trajectory import ToolCall, normalise_tool_calls

__all__ = [
    "RULE_KINDS",
    "Context",
    "ModelName",
    "Rule",
    "RuleSetupError",
    "Scope",
    "Settings",
    "Severity",
    "Subject",
    "TextRule",
    "ToolRule",
    "Violation",
]

Severity = Literal["low", "medium", "high", "critical"]
"""How bad a match is."""
Scope = Literal["output", "input", "contexts"]
"""Which text a rule reads: the agent's answer, the case input, or the retrieved contexts."""
ModelName = Literal["ner", "classifier", "embedder"]
"""A model the engine runs once per batch for the rules that read it."""

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Violation:
    """A rule that fired, with the span masked so results never copy the data they caught."""

    rule: str
    kind: str
    severity: str
    message: str
    masked: str
    start: int
    end: int
    where: str = "output"
    """What the span is in: ``output``, ``input``, ``contexts[2]`` or ``tool_calls[0]``."""
    confidence: float = 1.0
    """1.0 for rule matches; a classifier's probability or a topic's similarity otherwise."""

    def describe(self) -> str:
        """One line for a person."""
        place = f"{self.where} {self.start}-{self.end}" if self.end > self.start else self.where
        return f"{self.rule} ({self.severity}): '{self.masked}' in {place}. {self.message}"


@dataclass(frozen=True)
class Subject:
    """Everything one case puts in front of the rules."""

    output: str
    """The agent's answer."""
    input: str = ""
    """The case input (the user's request)."""
    contexts: tuple[str, ...] = ()
    """Retrieved passages the agent was given."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The agent's tool calls, in order."""

    @classmethod
    def of(cls, case: Any, output: Any) -> Subject:
        """The subject of a :class:`~evals.dataset.Case` and its :class:`~evals.targets.Output`.

        Tool calls come from the output (live targets record them there) and otherwise from
        ``case.metadata["tool_calls"]`` (a recorded trajectory).
        """
        raw = getattr(output, "tool_calls", None)
        if raw is None:
            recorded = case.metadata.get("tool_calls")
            raw = recorded if isinstance(recorded, list) else None
        return cls(
            output=output.text or "",
            input=case.input,
            contexts=tuple(output.contexts_for(case)),
            tool_calls=normalise_tool_calls(raw),
        )

    def texts(self, scope: Scope) -> list[tuple[str, str]]:
        """``(where, text)`` for each text in ``scope``."""
        if scope == "output":
            return [("output", self.output)]
        if scope == "input":
            return [("input", self.input)] if self.input else []
        return [(f"contexts[{i}]", c) for i, c in enumerate(self.contexts) if c]


def _normalise(kind: str, value: str) -> str:
    if kind in {"phone", "payment_card", "iban", "national_id"}:
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return " ".join(value.split()).lower()


@dataclass(frozen=True)
class Settings:
    """What one agent's contract adds to the rules it applies (``evals.policy``)."""

    allow: tuple[str, ...] = ()
    """Values the agent may echo: exact strings, or ``*@domain``."""
    canaries: tuple[str, ...] = ()
    """Strings planted in the agent's prompts that must never appear in a text."""
    system_prompt: str | None = None
    """The agent's system prompt; a long verbatim run of it in a text leaks it."""
    tools: frozenset[str] = frozenset()
    """Tool names the agent may call."""
    max_tool_depth: int | None = None
    """Deepest delegation level allowed; overrides a rule's own limit."""
    max_tool_calls: int | None = None
    """Most tool calls per case; overrides a rule's own limit."""
    tool_schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    """Tool name → JSON Schema of its arguments; overrides a rule's schema for that tool."""
    system_words: tuple[str, ...] = field(init=False, repr=False)
    """The system prompt's words, lower-cased."""
    _domains: frozenset[str] = field(init=False, repr=False)
    _values: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        words = tuple(w.lower() for w in _WORD.findall(self.system_prompt or ""))
        object.__setattr__(self, "system_words", words)
        domains = frozenset(a[2:].lower() for a in self.allow if a.startswith("*@"))
        object.__setattr__(self, "_domains", domains)
        object.__setattr__(self, "_values", tuple(a for a in self.allow if not a.startswith("*@")))

    def allowed(self, kind: str, value: str) -> bool:
        """Whether the agent may say ``value``, a match of a rule of ``kind``."""
        if kind == "email" and value.rpartition("@")[2].lower() in self._domains:
            return True
        key = _normalise(kind, value)
        return any(_normalise(kind, a) == key for a in self._values)


@dataclass(frozen=True)
class Context:
    """What a rule reads besides the text: the agent's settings and what the models said."""

    settings: Settings = field(default_factory=Settings)
    """The agent's settings."""
    entities: Mapping[str, Sequence[Entity]] = field(default_factory=dict)
    """Text → the NER model's entities (for the texts of rules that read ``ner``)."""
    probabilities: Mapping[str, float] = field(default_factory=dict)
    """Text → the injection classifier's probability (rules that read ``classifier``)."""
    vectors: Mapping[str, Any] = field(default_factory=dict)
    """String → its unit sentence embedding (rules that read ``embedder``)."""


class RuleSetupError(Exception):
    """A rule cannot run for this agent: a setting it needs is missing, or a file is unreadable."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        """What is missing and where to set it."""
        self.field = field
        """The rule's field at fault, when it is one (``schema_file``)."""


RULE_KINDS: dict[str, type[Rule]] = {}
"""Kind name → its class, in the order the classes are defined."""


def _kind_schema(schema: JsonDict, cls: type[Any]) -> None:
    """Describe a kind in its JSON Schema: ``kind`` required and explained, its own defaults."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or "kind" not in properties:
        return
    required = schema.get("required")
    others = [r for r in required if r != "kind"] if isinstance(required, list) else []
    schema["required"] = ["kind", *others]
    kind = properties["kind"]
    if isinstance(kind, dict) and cls.__doc__:
        kind["description"] = cls.__doc__.strip().split("\n")[0]
    scope, default = properties.get("scope"), getattr(cls, "default_scope", None)
    if isinstance(scope, dict) and default is not None:
        scope["default"] = list(default)


class Rule(BaseModel):
    """One policy rule. Each kind is a subclass; ``RULE_KINDS`` maps names to them."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        json_schema_extra=_kind_schema,
    )

    kind: str
    """What the rule detects."""
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    """Stable id, shown in results (``pii.email``)."""
    severity: Severity
    """How bad a match is: ``low``, ``medium``, ``high`` or ``critical``."""
    message: str = Field(min_length=1)
    """What a person should do about a match."""
    enabled: bool = True
    """Switch the rule off without deleting it."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Register a class whose ``kind`` is one literal name as that kind."""
        super().__pydantic_init_subclass__(**kwargs)
        annotation = cls.model_fields["kind"].annotation
        if get_origin(annotation) is not Literal:
            return
        if len(get_args(annotation)) != 1:
            raise TypeError(f"{cls.__name__}.kind must be one literal name, got {annotation}")
        [name] = get_args(annotation)
        if name in RULE_KINDS:
            raise TypeError(f"rule kind '{name}' is defined twice: {RULE_KINDS[name]} and {cls}")
        RULE_KINDS[name] = cls

    def model_post_init(self, context: Any, /) -> None:
        """Refuse a rule of no kind: the base classes only share fields and logic."""
        if RULE_KINDS.get(self.kind) is not type(self):
            of_kind = RULE_KINDS.get(self.kind)
            build = f"{of_kind.__name__}(...)" if of_kind else "a class in RULE_KINDS"
            raise TypeError(
                f"{type(self).__name__} is a base class, not a rule kind; build {build} or "
                "call parse_rule() with the rule's fields"
            )

    def bind(self, settings: Settings, folder: Path) -> Self:
        """This rule as one agent applies it: its settings checked, its files read.

        Args:
            settings: the agent's settings.
            folder: the folder relative paths in the rule resolve against (the pack's).

        Raises:
            RuleSetupError: the rule needs a setting nobody gave, or cannot read a file.
        """
        return self

    def violation(
        self, where: str, masked: str, start: int = 0, end: int = 0, confidence: float = 1.0
    ) -> Violation:
        """A finding of this rule; ``masked`` is all that is stored of what it caught."""
        return Violation(
            self.id,
            self.kind,
            self.severity,
            self.message,
            masked,
            start,
            end,
            where,
            round(confidence, 4),
        )

    def masked(self, where: str, match: Match, confidence: float = 1.0) -> Violation:
        """A finding of this rule at ``match``, masked the way this kind masks."""
        return self.violation(
            where, mask(self.kind, match.text), match.start, match.end, confidence
        )


class TextRule(Rule):
    """A rule that reads texts: the output, and the input or contexts when scoped to them."""

    default_scope: ClassVar[tuple[Scope, ...]] = ("output",)
    """The texts a rule of this kind reads when it names no ``scope``."""

    scope: list[Scope] | None = Field(default=None, min_length=1)
    """Texts the rule reads: ``output``, ``input``, ``contexts``. Default: ``[input,
    contexts]`` for ``prompt_injection``, ``[output]`` for every other text kind."""

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """The texts this rule reads."""
        return tuple(dict.fromkeys(self.scope)) if self.scope is not None else self.default_scope

    def models(self) -> frozenset[ModelName]:
        """The models this rule reads the results of (none by default)."""
        return frozenset()

    def model_inputs(self, text: str) -> Iterator[tuple[ModelName, str]]:
        """What each model must read before :meth:`find` can judge ``text``."""
        for model in sorted(self.models()):
            yield model, text

    @abstractmethod
    def find(self, where: str, text: str, subject: Subject, ctx: Context) -> Iterator[Violation]:
        """Every violation of this rule in ``text``, which is ``where`` in ``subject``."""


class ToolRule(Rule):
    """A rule that reads the agent's tool calls (and takes no ``scope``)."""

    @abstractmethod
    def check_calls(self, calls: Sequence[ToolCall], ctx: Context) -> Iterator[Violation]:
        """Every violation of this rule in one case's tool calls."""
