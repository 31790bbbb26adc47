"""Rule packs: validated YAML files of policy rules, shared between contracts.

A rule has an ``id``, a ``kind`` (what it detects), a ``severity`` and a ``message`` a person
can act on. Each kind takes only the fields that configure it; a field another kind uses is an
error, so a typo never silently turns a rule off. ``docs/policy.md`` describes every kind.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from evals.contract import load_yaml_model

__all__ = [
    "KIND_FIELDS",
    "NATIONAL_IDS",
    "SECRET_SHAPES",
    "TEXT_KINDS",
    "TRAJECTORY_KINDS",
    "Rule",
    "RuleKind",
    "RulePack",
    "Scope",
    "Severity",
    "load_rule_pack",
]

RuleKind = Literal[
    # personal data
    "email",
    "phone",
    "payment_card",
    "iban",
    "national_id",
    "ip_address",
    "person_name",
    "address",
    "date_of_birth",
    # secrets
    "api_key",
    "private_key",
    # content and format
    "regex",
    "denylist",
    "topic",
    "required",
    "json_schema",
    "length",
    # prompt injection and leakage
    "prompt_injection",
    "leakage",
    # agent trajectories
    "tool_allowlist",
    "tool_limits",
    "tool_arguments",
]
Severity = Literal["low", "medium", "high", "critical"]
Scope = Literal["output", "input", "contexts"]
"""Which text a rule reads: the agent's answer, the case input, or the retrieved contexts."""

NATIONAL_IDS = (
    "us_ssn",
    "ca_sin",
    "uk_nino",
    "nl_bsn",
    "es_dni",
    "fr_nir",
    "it_cf",
    "in_aadhaar",
    "us_drivers_license",
)
"""National identity numbers the ``national_id`` kind knows, each with its checksum or format."""

SECRET_SHAPES = (
    "openai",
    "anthropic",
    "aws_access_key",
    "github",
    "gitlab",
    "slack",
    "stripe",
    "google_api",
    "jwt",
    "bearer",
    "password_assignment",
)
"""API-key and token shapes the ``api_key`` kind knows."""

TRAJECTORY_KINDS = frozenset({"tool_allowlist", "tool_limits", "tool_arguments"})
"""Kinds that read the agent's tool calls."""

TEXT_KINDS = frozenset(get_args(RuleKind)) - TRAJECTORY_KINDS
"""Kinds that read text (as opposed to tool calls)."""

# Which optional fields each kind accepts; everything else must stay unset.
KIND_FIELDS: dict[str, frozenset[str]] = {
    "email": frozenset(),
    "phone": frozenset(),
    "payment_card": frozenset(),
    "iban": frozenset(),
    "national_id": frozenset({"countries"}),
    "ip_address": frozenset(),
    "person_name": frozenset(),
    "address": frozenset(),
    "date_of_birth": frozenset(),
    "api_key": frozenset({"shapes"}),
    "private_key": frozenset(),
    "regex": frozenset({"pattern"}),
    "denylist": frozenset({"phrases"}),
    "topic": frozenset({"examples", "threshold"}),
    "required": frozenset({"phrases", "pattern", "when"}),
    "json_schema": frozenset({"json_schema", "schema_file"}),
    "length": frozenset({"min_chars", "max_chars", "min_words", "max_words"}),
    "prompt_injection": frozenset({"threshold", "classifier"}),
    "leakage": frozenset({"canaries", "min_words"}),
    "tool_allowlist": frozenset({"tools"}),
    "tool_limits": frozenset({"max_depth", "max_calls"}),
    "tool_arguments": frozenset({"tool_schemas"}),
}

_OPTIONAL = frozenset(
    {
        "countries",
        "shapes",
        "pattern",
        "phrases",
        "examples",
        "threshold",
        "when",
        "json_schema",
        "schema_file",
        "min_chars",
        "max_chars",
        "min_words",
        "max_words",
        "classifier",
        "canaries",
        "tools",
        "max_depth",
        "max_calls",
        "tool_schemas",
    }
)

_DEFAULT_SCOPE: dict[str, tuple[Scope, ...]] = {"prompt_injection": ("input", "contexts")}


class Rule(BaseModel):
    """One policy rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    """Stable id, shown in results (``pii.email``)."""
    kind: RuleKind
    """What the rule detects (``docs/policy.md`` lists every kind and its fields)."""
    severity: Severity
    """How bad a match is."""
    message: str = Field(min_length=1)
    """What a person should do about a match."""
    enabled: bool = True
    """Switch a rule off without deleting it."""
    scope: list[Scope] | None = Field(default=None, min_length=1)
    """Texts the rule reads: ``output``, ``input``, ``contexts``. Default: ``[input, contexts]``
    for ``prompt_injection``, ``[output]`` for every other text kind; tool-call kinds read the
    trajectory and take no scope."""
    pattern: str | None = None
    """Regular expression (``regex``; ``required``: a text must contain a match)."""
    phrases: list[str] = Field(default_factory=list)
    """Phrases matched case-insensitively as whole words (``denylist``; ``required``: at least
    one must appear)."""
    countries: list[str] = Field(default_factory=list)
    """National ids to look for (``national_id``); empty means all known ones."""
    shapes: list[str] = Field(default_factory=list)
    """Token shapes to look for (``api_key``); empty means all known ones."""
    examples: list[str] = Field(default_factory=list)
    """Sentences that describe the denied topic (``topic``)."""
    threshold: float | None = Field(default=None, gt=0, lt=1)
    """Decision threshold: cosine similarity to an example (``topic``, default 0.6) or the
    classifier's injection probability (``prompt_injection``, default 0.5)."""
    when: Literal["always", "contexts"] = "always"
    """``required``: check every answer, or only answers to cases that have contexts (a
    citation marker when sources were given)."""
    json_schema: dict[str, Any] | None = None
    """Inline JSON Schema the output must parse to and satisfy (``json_schema``)."""
    schema_file: str | None = None
    """JSON Schema file, relative to the rule pack (``json_schema``)."""
    min_chars: int | None = Field(default=None, ge=0)
    """Fewest characters an answer may have (``length``)."""
    max_chars: int | None = Field(default=None, ge=1)
    """Most characters an answer may have (``length``)."""
    min_words: int | None = Field(default=None, ge=0)
    """``length``: fewest words an answer may have. ``leakage``: the shortest verbatim run of
    system-prompt words that counts as a leak (default 8)."""
    max_words: int | None = Field(default=None, ge=1)
    """Most words an answer may have (``length``)."""
    classifier: bool = True
    """``prompt_injection``: also ask the offline classifier (a logistic regression on
    all-MiniLM-L6-v2 vectors, ``evals/policy/injection_weights.json``), not only the rules."""
    canaries: list[str] = Field(default_factory=list)
    """Secret marker strings planted in prompts; any of them in a text is a leak (``leakage``).
    A contract adds its own in ``evals.policy.canaries``."""
    tools: list[str] = Field(default_factory=list)
    """Tool names the agent may call (``tool_allowlist``), added to the contract's."""
    max_depth: int | None = Field(default=None, ge=0)
    """Deepest recursion or delegation level a tool call may have (``tool_limits``); the
    contract's ``max_tool_depth`` overrides it."""
    max_calls: int | None = Field(default=None, ge=1)
    """Most tool calls in one case (``tool_limits``); the contract's ``max_tool_calls``
    overrides it."""
    tool_schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Tool name → JSON Schema its arguments must satisfy (``tool_arguments``), added to the
    contract's ``tool_schemas`` files."""

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        allowed = KIND_FIELDS[self.kind]
        for name in sorted((_OPTIONAL - allowed) & self.model_fields_set):
            raise ValueError(f"'{name}' does not apply to kind '{self.kind}'")
        if self.scope is not None and self.kind in TRAJECTORY_KINDS:
            raise ValueError(f"kind '{self.kind}' reads tool calls and takes no 'scope'")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression: {exc}") from None
        if self.kind == "regex" and not self.pattern:
            raise ValueError("a 'regex' rule needs 'pattern'")
        if self.kind == "denylist" and not self.phrases:
            raise ValueError("a 'denylist' rule needs at least one entry in 'phrases'")
        if self.kind == "required" and not self.phrases and self.pattern is None:
            raise ValueError("a 'required' rule needs 'phrases' or 'pattern'")
        if self.kind == "topic" and not self.examples:
            raise ValueError("a 'topic' rule needs at least one sentence in 'examples'")
        if self.kind == "json_schema" and (self.json_schema is None) == (self.schema_file is None):
            raise ValueError(
                "a 'json_schema' rule needs exactly one of 'json_schema' or 'schema_file'"
            )
        if self.kind == "length" and all(
            v is None for v in (self.min_chars, self.max_chars, self.min_words, self.max_words)
        ):
            raise ValueError("a 'length' rule needs at least one of min/max_chars, min/max_words")
        unknown = [c for c in self.countries if c not in NATIONAL_IDS]
        if unknown:
            raise ValueError(
                f"unknown national id '{unknown[0]}' (expected one of: {', '.join(NATIONAL_IDS)})"
            )
        unknown = [s for s in self.shapes if s not in SECRET_SHAPES]
        if unknown:
            raise ValueError(
                f"unknown token shape '{unknown[0]}' (expected one of: {', '.join(SECRET_SHAPES)})"
            )
        if self.json_schema is not None or self.tool_schemas:
            _check_schemas(
                [self.json_schema] if self.json_schema is not None else [],
                self.tool_schemas,
            )
        return self

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """The texts this rule reads (empty for tool-call kinds)."""
        if self.kind in TRAJECTORY_KINDS:
            return ()
        if self.scope is not None:
            return tuple(dict.fromkeys(self.scope))
        return _DEFAULT_SCOPE.get(self.kind, ("output",))


def _check_schemas(schemas: list[dict[str, Any]], by_tool: dict[str, dict[str, Any]]) -> None:
    """Reject a JSON Schema that is itself invalid, naming the tool it belongs to."""
    from jsonschema import exceptions, validators  # type: ignore[import-untyped]

    for name, schema in [*(("", s) for s in schemas), *by_tool.items()]:
        try:
            validators.validator_for(schema).check_schema(schema)
        except exceptions.SchemaError as exc:
            where = f"the schema of tool '{name}'" if name else "'json_schema'"
            raise ValueError(f"{where} is not a valid JSON Schema: {exc.message}") from None


class RulePack(BaseModel):
    """A named set of rules, referenced from contracts by path."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Pack name."""
    description: str = Field(min_length=1)
    """What the pack protects against."""
    allow: list[str] = Field(default_factory=list)
    """Values every agent using this pack may output: exact strings or ``*@domain``."""
    rules: list[Rule] = Field(min_length=1)
    """The rules."""

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_ids(self) -> RulePack:
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            where = "; ".join(
                f"'{d}' is " + " and ".join(f"rules.{k}" for k, i in enumerate(ids) if i == d)
                for d in duplicates
            )
            raise ValueError(f"rule ids must be unique within a pack: {where}; rename one")
        return self

    @property
    def source(self) -> Path | None:
        """The file the pack was loaded from (resolves ``schema_file``), if any."""
        return self._source


def load_rule_pack(path: str | Path) -> RulePack:
    """Load and validate a rule pack.

    Raises:
        UserError: missing file, invalid YAML, or invalid rules (``file:line: field: message``).
    """
    path = Path(path)
    pack, _ = load_yaml_model(
        path,
        RulePack,
        "a rule pack: a YAML mapping with 'name:' and 'rules:'",
        [sys.modules[__name__]],
    )
    pack._source = path
    return pack
