"""Rule packs over labelled rows from a file, to measure them on your own data.

The engine behind ``impactgate judge policy``, usable from a notebook::

    rows = read_policy_rows(Path("rows.jsonl"))
    engine = PolicyEngine([load_rule_pack(Path("policies/rules/pii.yaml"))])
    checked = list(check_policy_rows(engine, rows))
    print(PolicyRowsSummary.of(checked).describe())

A row is a JSON object with ``text`` (the answer) and optionally ``input``, ``contexts``,
``tool_calls`` and ``label`` (1 = a violation); every other field is kept as given.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evals._io import read_jsonl_rows
from evals.metrics import Confusion
from evals.policy._engine import PolicyEngine
from evals.policy._rule import Subject, Violation
from evals.policy._trajectory import normalise_tool_calls

__all__ = [
    "CheckedRow",
    "PolicyRow",
    "PolicyRowsSummary",
    "check_policy_rows",
    "default_scopes",
    "read_policy_rows",
]

_BATCH = 64


class PolicyRow(BaseModel):
    """The fields a policy row may have; ``text`` is required, any others are kept."""

    model_config = ConfigDict(extra="allow")

    text: str
    """The agent's answer."""
    input: str = ""
    """The case input, for rules scoped to the input."""
    contexts: str | list[str] = Field(default_factory=list)
    """Retrieved passages, for rules scoped to the contexts."""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """The agent's tool calls, for trajectory rules."""
    label: object = None
    """1 (or true) when the row is a violation, 0 (or false) when not; optional."""

    @field_validator("label", mode="before")
    @classmethod
    def _binary(cls, value: object) -> object:
        if value not in (0, 1, True, False, None):
            raise ValueError(f"must be 0 or 1 (or true/false), got {value!r}")
        return value


def read_policy_rows(path: Path, *, field: str = "") -> list[dict[str, Any]]:
    """The rows of a JSON-lines file, each checked against :class:`PolicyRow`.

    Args:
        path: the file.
        field: how the caller names the file in a problem about the path (``--input``).

    Raises:
        UserError: the file is missing or unreadable, a line is not a valid row (each problem
            names its line), or there are no rows.
    """
    return read_jsonl_rows(
        path,
        PolicyRow,
        expected="text (and optionally input, contexts, tool_calls, label)",
        field=field,
    )


def default_scopes(rows: Sequence[dict[str, Any]]) -> Literal["all", "declared"]:
    """How the rules should read these rows when nobody says.

    ``declared`` when any row has an input, contexts or tool calls (each rule reads its own
    field), else ``all`` (every text rule reads ``text``, as for loose texts).
    """
    carries = any(r.get("input") or r.get("contexts") or r.get("tool_calls") for r in rows)
    return "declared" if carries else "all"


def _subject(row: dict[str, Any]) -> Subject:
    contexts = row.get("contexts") or []
    return Subject(
        output=str(row["text"]),
        input=str(row.get("input") or ""),
        contexts=(contexts,) if isinstance(contexts, str) else tuple(str(c) for c in contexts),
        tool_calls=normalise_tool_calls(row.get("tool_calls") or []),
    )


@dataclass(frozen=True)
class CheckedRow:
    """One row and the violations the rule packs found in it."""

    row: dict[str, Any]
    """The row as read, every field kept."""
    violations: list[Violation]

    @property
    def flagged(self) -> bool:
        """Whether any rule fired."""
        return bool(self.violations)

    @property
    def rules(self) -> list[str]:
        """The ids of the rules that fired, sorted, each once."""
        return sorted({v.rule for v in self.violations})

    @property
    def label(self) -> int | None:
        """The row's label (1 = violation) when it has one, else ``None``."""
        label = self.row.get("label")
        return int(label) if label in (0, 1, True, False) else None

    def record(self) -> dict[str, Any]:
        """The output record: the row plus what the rules found.

        Adds ``violation`` (0/1), ``score`` (the strongest finding's confidence), ``rules``
        and ``violations`` (their spans masked).
        """
        result = dict(self.row)
        result.update(
            violation=int(self.flagged),
            score=max((v.confidence for v in self.violations), default=0.0),
            rules=self.rules,
            violations=[asdict(v) for v in self.violations],
        )
        return result

    def to_json(self) -> str:
        """:meth:`record` as one line of JSON (text unescaped), without the newline."""
        return json.dumps(self.record(), default=str, ensure_ascii=False)


def check_policy_rows(
    engine: PolicyEngine,
    rows: Sequence[dict[str, Any]],
    *,
    all_scopes: bool | None = None,
    batch_size: int = _BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[CheckedRow]:
    """Apply the engine's rules to each row, in batches; results come in row order.

    Args:
        engine: the rule packs and their settings.
        rows: rows with ``text`` (:func:`read_policy_rows`).
        all_scopes: every text rule reads ``text``, whatever its scope; ``None`` decides by
            :func:`default_scopes`, as ``impactgate judge policy`` does.
        batch_size: rows checked at once (models run once per batch).
        on_batch: called with the number of rows in each batch once they have all been
            yielded, e.g. to advance a progress display.
    """
    if all_scopes is None:
        all_scopes = default_scopes(rows) == "all"
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        found = engine.check_many([_subject(r) for r in batch], all_scopes=all_scopes)
        for row, violations in zip(batch, found, strict=True):
            yield CheckedRow(row, violations)
        if on_batch is not None:
            on_batch(len(batch))


@dataclass(frozen=True)
class PolicyRowsSummary:
    """What the rule packs flagged in a set of rows, and how that agrees with their labels."""

    rows: int
    flagged: int
    by_rule: dict[str, int]
    """Rule id → rows it fired on."""
    labelled: Confusion | None
    """Flagged against labelled 1, over rows with a label; ``None`` when no row has one."""

    @classmethod
    def of(cls, checked: Sequence[CheckedRow]) -> PolicyRowsSummary:
        """Summarise checked rows (any order)."""
        labelled = [(label, c.flagged) for c in checked if (label := c.label) is not None]
        return cls(
            rows=len(checked),
            flagged=sum(1 for c in checked if c.flagged),
            by_rule=dict(sorted(Counter(r for c in checked for r in c.rules).items())),
            labelled=(
                Confusion.of([y for y, _ in labelled], [f for _, f in labelled])
                if labelled
                else None
            ),
        )

    def describe(self) -> str:
        """One line for people.

        For example ``4 rows, 2 flagged (pii.phone 2); on 4 labelled rows precision 1.000,
        recall 1.000``.
        """
        text = f"{self.rows} rows, {self.flagged} flagged"
        if self.by_rule:
            text += " (" + ", ".join(f"{r} {n}" for r, n in self.by_rule.items()) + ")"
        if self.labelled is not None:
            text += (
                f"; on {self.labelled.n} labelled rows precision {self.labelled.precision:.3f}, "
                f"recall {self.labelled.recall:.3f}"
            )
        return text
