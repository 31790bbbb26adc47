"""What every policy rule shares: the base classes of the rule kinds and what they read.

A rule kind is one class in ``_kinds.py``: its fields (validated with ``extra="forbid"``, so a
field of another kind is an error), its docstring (the reference in ``docs/policy.md`` is
generated from it) and its checking logic. Defining the class registers the kind; the rule-pack
model's union of kinds is built from that registry.
"""

from __future__ import annotations

import functools
import importlib
import re
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, get_args, get_origin

import regex  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from evals.policy._detectors import Match, mask
from evals.policy._ner import Entity
from evals.policy._trajectory import ToolCall, normalise_tool_calls

__all__ = [
    "PATTERN_TIMEOUT_S",
    "RULE_KINDS",
    "Context",
    "ModelName",
    "PatternTimeout",
    "Rule",
    "RuleSetupError",
    "Scope",
    "Settings",
    "Severity",
    "Subject",
    "TextRule",
    "ToolRule",
    "Violation",
    "compiled_pattern",
    "pattern_problem",
    "search_pattern",
]

Severity = Literal["low", "medium", "high", "critical"]
"""How bad a match is."""
Scope = Literal["output", "input", "contexts"]
"""Which text a rule reads: the agent's answer, the case input, or the retrieved contexts."""
ModelName = Literal["ner", "classifier", "embedder"]
"""A model the engine runs once per batch for the rules that read it."""

_WORD = re.compile(r"\w+")


# --- patterns from rule packs: checked before use, bounded while used --------------------------
#
# A rule pack may come from a pull request, and a regular expression with nested repeats,
# ``(a+)+$``, can take exponential time in a backtracking engine: one long output then hangs
# the run (Python's ``re`` holds the interpreter, so not even SIGTERM gets through). Patterns
# are compiled with the ``regex`` engine, whose matching takes a timeout: a pattern that runs
# out of time on one text is that case's scorer error, never a hung run. ``pattern_problem``
# refuses the known shapes of catastrophic backtracking when the pack is validated: a repeat
# inside a repeat that nothing separates (read from the parsed pattern), and any pattern slow
# on short probe texts made of its own characters. See docs/design/hardening.md.

PATTERN_TIMEOUT_S = 1.0
"""Longest time one rule's pattern may take over one text before the case is an error."""
_PROBE_TIMEOUT_S = 0.1
_PROBE_LENGTH = 64
_UNBOUNDED = 100
"""A repeat allowing more than this many times counts as unbounded."""
_ALPHABET = [chr(i) for i in range(0x250)] + ["\u00a0", "\u2028", "\u4e2d", "\u0627", "\U0001f600"]
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


@dataclass(frozen=True)
class _CharSet:
    """The characters one parsed element of a pattern matches."""

    literals: frozenset[str] = frozenset()
    ranges: tuple[tuple[int, int], ...] = ()
    categories: tuple[re.Pattern[str], ...] = ()
    negate: bool = False

    def __contains__(self, ch: object) -> bool:
        if not isinstance(ch, str):
            return False
        hit = (
            ch in self.literals
            or any(lo <= ord(ch) <= hi for lo, hi in self.ranges)
            or any(p.match(ch) for p in self.categories)
        )
        return hit != self.negate

    def disjoint(self, other: _CharSet) -> bool:
        """Whether no character (of a broad sample) is in both sets."""
        return not any(ch in self and ch in other for ch in _ALPHABET)


class PatternTimeout(RuntimeError):
    """A rule's regular expression took longer than ``PATTERN_TIMEOUT_S`` on one text."""


@functools.lru_cache(maxsize=512)
def compiled_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled by the engine rules match with (``regex``, ``re``-compatible)."""
    return regex.compile(pattern)


def search_pattern(
    rule: str, pattern: str, text: str, *, first: bool = False
) -> list[regex.Match[str]]:
    """Every match of ``pattern`` in ``text`` (only the first with ``first``), in bounded time.

    Raises:
        PatternTimeout: the pattern ran out of time (``PATTERN_TIMEOUT_S``); the caller's case
            becomes an error.
    """
    compiled = compiled_pattern(pattern)
    try:
        if first:
            found = compiled.search(text, timeout=PATTERN_TIMEOUT_S)
            return [found] if found is not None else []
        return list(compiled.finditer(text, timeout=PATTERN_TIMEOUT_S))
    except TimeoutError:
        raise PatternTimeout(
            f"rule '{rule}': its pattern took more than {PATTERN_TIMEOUT_S:g} s on a text of "
            f"{len(text)} characters, so this case is recorded as an error; simplify the pattern"
        ) from None


def _names(op: Any) -> str:
    return str(op)


def _char_set(op: Any, av: Any) -> _CharSet | None:
    """What one parsed element matches, when it is one character (else ``None``)."""
    name = _names(op)
    if name == "LITERAL":
        return _CharSet(literals=frozenset({chr(av)}))
    if name == "NOT_LITERAL":
        return _CharSet(literals=frozenset({chr(av)}), negate=True)
    if name == "ANY":
        return _CharSet(literals=frozenset({"\n"}), negate=True)
    if name != "IN":
        return None
    literals, ranges, categories, negate = set(), [], [], False
    for o, a in av:
        kind = _names(o)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            literals.add(chr(a))
        elif kind == "RANGE":
            ranges.append((int(a[0]), int(a[1])))
        elif kind == "CATEGORY" and _names(a) in _CATEGORIES:
            categories.append(re.compile(_CATEGORIES[_names(a)]))
        else:
            return None
    return _CharSet(frozenset(literals), tuple(ranges), tuple(categories), negate)


def _flat(items: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The elements of a sequence with its plain groups opened."""
    out: list[tuple[Any, Any]] = []
    for op, av in items:
        if _names(op) == "SUBPATTERN":
            out += _flat(list(av[3]))
        else:
            out.append((op, av))
    return out


def _inner_repeats(items: Sequence[tuple[Any, Any]]) -> list[_CharSet | None]:
    """What each unbounded backtracking repeat anywhere in ``items`` repeats."""
    found: list[_CharSet | None] = []
    for op, av in items:
        name = _names(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            body = _flat(list(av[2]))
            if av[1] > _UNBOUNDED:
                found.append(_char_set(*body[0]) if len(body) == 1 else None)
            found += _inner_repeats(body)
        elif name == "SUBPATTERN":
            found += _inner_repeats(list(av[3]))
        elif name == "BRANCH":
            for branch in av[1]:
                found += _inner_repeats(list(branch))
    return found


def _ambiguous(body: Sequence[tuple[Any, Any]]) -> bool:
    r"""Whether an unbounded repeat of ``body`` can split the same text in many ways.

    It can when ``body`` holds an unbounded repeat and no character the body must match in
    every round (a separator such as the ``,`` of ``(\d+,)*``) is one that repeat cannot match.
    """
    inner = _inner_repeats(body)
    if not inner:
        return False
    separators = []
    for op, av in _flat(body):
        if _names(op) in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            element = _flat(list(av[2]))
            mandatory = _char_set(*element[0]) if av[0] >= 1 and len(element) == 1 else None
        else:
            mandatory = _char_set(op, av)
        if mandatory is not None:
            separators.append(mandatory)
    return any(t is None or not any(t.disjoint(s) for s in separators) for t in inner)


def _inside(op: Any, av: Any) -> list[list[tuple[Any, Any]]]:
    """The sequences a parsed element holds (a repeat's body, a group's, each branch)."""
    name = _names(op)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return [list(av[2])]
    if name == "SUBPATTERN":
        return [list(av[3])]
    if name == "ATOMIC_GROUP":
        return [list(av)]
    if name in ("ASSERT", "ASSERT_NOT"):
        return [list(av[1])]
    if name == "BRANCH":
        return [list(branch) for branch in av[1]]
    return []


def _nested_repeat(items: Sequence[tuple[Any, Any]]) -> bool:
    """Whether an unbounded repeat anywhere in ``items`` is ambiguous (``_ambiguous``)."""
    for op, av in items:
        name = _names(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT") and av[1] > _UNBOUNDED and _ambiguous(list(av[2])):
            return True
        if any(_nested_repeat(part) for part in _inside(op, av)):
            return True
    return False


def _parsed(pattern: str) -> list[tuple[Any, Any]] | None:
    """The pattern as Python's own parser reads it, or ``None`` (syntax only ``regex`` knows)."""
    try:
        return list(importlib.import_module("re._parser").parse(pattern))
    except Exception:  # any failure only means the probes alone judge the pattern
        return None


def _literals(items: Sequence[tuple[Any, Any]]) -> set[str]:
    """Every literal character of a parsed pattern (the probes are made of them)."""
    found: set[str] = set()
    for op, av in items:
        if _names(op) == "LITERAL":
            found.add(chr(av))
        for part in _inside(op, av):
            found |= _literals(part)
    return found


@functools.lru_cache(maxsize=512)
def pattern_problem(pattern: str) -> str | None:
    """What is wrong with a rule's regular expression, in words, or ``None`` when it may run."""
    try:
        compiled = compiled_pattern(pattern)
    except regex.error as exc:
        return f"not a valid regular expression: {exc}"
    parsed = _parsed(pattern)
    if parsed is not None and _nested_repeat(parsed):
        return (
            f"'{pattern}' risks catastrophic backtracking: a repeat inside a repeat can match "
            "the same text in many ways, so one long text could take hours; rewrite it so "
            "each character can be matched one way only (e.g. 'a+' instead of '(a+)+')"
        )
    characters = [*sorted(_literals(parsed or []))[:10], "a", "1", " ", "x", "."]
    for ch in dict.fromkeys(characters):
        for end in ("!", "\x00"):
            probe = ch * _PROBE_LENGTH + end
            try:
                for _ in compiled.finditer(probe, timeout=_PROBE_TIMEOUT_S):
                    pass
            except TimeoutError:
                return (
                    f"'{pattern}' takes more than {_PROBE_TIMEOUT_S:g} s on a "
                    f"{len(probe)}-character test text ({ch!r} repeated), so a long text "
                    "could hang the run; simplify it (overlapping alternatives under a repeat, "
                    "such as '(a|aa)+', backtrack exponentially)"
                )
    return None


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
    agent: str | None = None
    """For a tool call: the agent that made it, when the trajectory names it."""
    span_id: str | None = None
    """For a tool call read from a trace: the span that recorded it."""

    def describe(self) -> str:
        """One line for a person."""
        place = f"{self.where} {self.start}-{self.end}" if self.end > self.start else self.where
        if self.agent is not None:
            place += f" by agent '{self.agent}'"
        if self.span_id is not None:
            place += f" (span {self.span_id})"
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
        allow_inf_nan=False,
        json_schema_extra=_kind_schema,
    )

    file_fields: ClassVar[tuple[str, ...]] = ()
    """Fields of this kind that name a file, relative to the rule pack and inside its folder."""

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
