"""Rule packs: validated YAML files of policy rules, shared between contracts.

A rule has an ``id``, a ``kind`` (what it detects), a ``severity`` and a ``message`` a person
can act on. Each kind is a class in ``_kinds.py`` that takes only the fields that configure it;
a field another kind uses is an error, so a typo never silently turns a rule off.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, model_validator

from evals.contract import line_of, load_yaml_model, outside_problem
from evals.errors import FieldError, Problem, UserError, display_path
from evals.policy import _kinds  # noqa: F401  (defining the kinds registers them)
from evals.policy._rule import RULE_KINDS, Rule

__all__ = ["AnyRule", "RulePack", "load_rule_pack", "parse_rule"]

if TYPE_CHECKING:
    AnyRule = Rule
else:
    AnyRule = Annotated[Union[tuple(RULE_KINDS.values())], Field(discriminator="kind")]  # noqa: UP007
    """A rule of any registered kind, told apart by ``kind``."""

_ANY_RULE: TypeAdapter[Rule] = TypeAdapter(AnyRule)


def parse_rule(data: Mapping[str, Any]) -> Rule:
    """Validate one rule given as a mapping (as in a pack), as the class its ``kind`` names.

    Raises:
        pydantic.ValidationError: an unknown kind, a missing field, or a field of another kind.
    """
    return _ANY_RULE.validate_python(data)


class RulePack(BaseModel):
    """A named set of rules, referenced from contracts by path."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Pack name."""
    description: str = Field(min_length=1)
    """What the pack protects against."""
    allow: list[str] = Field(default_factory=list)
    """Values every agent using this pack may output: exact strings or ``*@domain``."""
    rules: list[AnyRule] = Field(min_length=1)
    """The rules; each one's ``kind`` decides which fields it takes."""

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_ids(self) -> RulePack:
        ids = [r.id for r in self.rules]
        found = []
        for k, rule_id in enumerate(ids):
            first = ids.index(rule_id)
            if first < k:
                found.append(
                    (
                        ("rules", k, "id"),
                        f"rule ids must be unique within a pack: '{rule_id}' is rules.{first} "
                        f"and rules.{k}; rename one",
                    )
                )
        if found:
            raise FieldError(*found)
        return self

    @property
    def source(self) -> Path | None:
        """The file the pack was loaded from (resolves ``schema_file``), if any."""
        return self._source


def load_rule_pack(path: str | Path) -> RulePack:
    """Load and validate a rule pack.

    Raises:
        UserError: missing file, invalid YAML, invalid rules, or a file named by a rule that is
            outside the pack's folder (``file:line: field: message``).
    """
    path = Path(path)
    pack, node = load_yaml_model(
        path, RulePack, "a rule pack: a YAML mapping with 'name:' and 'rules:'"
    )
    shown, problems = display_path(path), []
    for i, rule in enumerate(pack.rules):
        for name in rule.file_fields:
            written = getattr(rule, name)
            if not isinstance(written, str):
                continue
            problem = outside_problem(written, path.parent / written, path.parent)
            if problem is not None:
                line = line_of(node, ["rules", i, name])
                problems.append(Problem(f"{shown}:{line}", f"rules.{i}.{name}", problem))
    if problems:
        raise UserError(problems)
    pack._source = path
    return pack
