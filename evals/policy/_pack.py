"""Rule packs: validated YAML files of policy rules, shared between contracts."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evals.contract import load_yaml_model

__all__ = ["Rule", "RuleKind", "RulePack", "Severity", "load_rule_pack"]

RuleKind = Literal["email", "phone", "payment_card", "iban", "regex", "denylist"]
Severity = Literal["low", "medium", "high", "critical"]


class Rule(BaseModel):
    """One policy rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    """Stable id, shown in results (``pii.email``)."""
    kind: RuleKind
    """What the rule detects: email, phone, payment_card (Luhn), iban (mod-97), regex, denylist."""
    severity: Severity
    """How bad a match is."""
    message: str = Field(min_length=1)
    """What a person should do about a match."""
    pattern: str | None = None
    """Regular expression (``kind: regex`` only)."""
    phrases: list[str] = Field(default_factory=list)
    """Phrases matched case-insensitively as whole words (``kind: denylist`` only)."""
    enabled: bool = True
    """Switch a rule off without deleting it."""

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("a 'regex' rule needs 'pattern'")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression: {exc}") from None
        elif self.pattern is not None:
            raise ValueError(f"'pattern' only applies to kind 'regex', not '{self.kind}'")
        if self.kind == "denylist" and not self.phrases:
            raise ValueError("a 'denylist' rule needs at least one entry in 'phrases'")
        if self.kind != "denylist" and self.phrases:
            raise ValueError(f"'phrases' only applies to kind 'denylist', not '{self.kind}'")
        return self


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

    @model_validator(mode="after")
    def _unique_ids(self) -> RulePack:
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(duplicates)}")
        return self


def load_rule_pack(path: str | Path) -> RulePack:
    """Load and validate a rule pack.

    Raises:
        UserError: missing file, invalid YAML, or invalid rules (``file:line: field: message``).
    """
    pack, _ = load_yaml_model(
        Path(path),
        RulePack,
        "a rule pack: a YAML mapping with 'name:' and 'rules:'",
        [sys.modules[__name__]],
    )
    return pack
