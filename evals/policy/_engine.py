"""Applying rule packs to what an agent saw, said and did: violations with masked spans.

The engine reads a :class:`Subject` — the output text, the case input, the retrieved contexts
and the tool calls — and returns one :class:`Violation` per finding. A violation never carries
the value it caught: ``masked`` keeps just enough to recognise the kind (``j***@mail.example``,
``****1111``), so stored results do not become a copy of the personal data they flagged.

What each kind checks lives on its class (``_kinds.py``); the engine resolves the rules in
force for one agent, runs the models the rules read once per batch over every text that needs
them (loading each on first use), and hands every rule its texts and tool calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from evals.errors import Problem, UserError, did_you_mean, display_path
from evals.policy._kinds import DenylistRule
from evals.policy._ner import Entity
from evals.policy._pack import RulePack
from evals.policy._rule import (
    Context,
    ModelName,
    Rule,
    RuleSetupError,
    Settings,
    Subject,
    TextRule,
    ToolRule,
    Violation,
)
from evals.policy._trajectory import ToolCall

__all__ = [
    "Classifier",
    "Embedder",
    "NerBackend",
    "PolicyEngine",
    "tool_schemas_from_files",
]


class NerBackend(Protocol):
    """What the engine needs from an NER model."""

    def entities(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text."""
        ...


class Classifier(Protocol):
    """What the engine needs from a prompt-injection classifier."""

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        """Injection probability of each text."""
        ...


class Embedder(Protocol):
    """What the engine needs from a sentence-embedding model."""

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit vectors, one row per text (a numpy array)."""
        ...


class PolicyEngine:
    """Rule packs plus an agent's own exceptions, limits and secrets to guard.

    Args:
        packs: the rule packs.
        allow: values the agent may echo: exact strings, or ``*@domain``.
        deny: extra phrases the agent must never say.
        disable: rule ids switched off for this agent.
        canaries: strings planted in the agent's prompts that must never appear in a text.
        system_prompt: the agent's system prompt; a long verbatim run of it in an output leaks.
        tools: tool names the agent may call (added to the packs' ``tools``).
        max_tool_depth: deepest delegation level allowed (overrides the packs').
        max_tool_calls: most tool calls per case (overrides the packs').
        tool_schemas: tool name → JSON Schema of its arguments (added to the packs').
        source: how to name the agent's settings in error messages (the contract file).
        ner: an NER model (default: the bundled spaCy model, loaded on first use).
        classifier: a prompt-injection classifier (default: ``default_classifier()``, the
            fitted MiniLM classifier, its decisions cached under ``$IMPACTGATE_CACHE_DIR``).
        embedder: a sentence embedder for ``topic`` rules (default: all-MiniLM-L6-v2).

    Raises:
        UserError: a rule needs a setting nobody gave (an allowlist, a limit, a canary or a
            system prompt), ``disable`` names an unknown rule, or a schema file is missing.
    """

    def __init__(
        self,
        packs: Iterable[RulePack],
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        *,
        disable: Iterable[str] = (),
        canaries: Iterable[str] = (),
        system_prompt: str | None = None,
        tools: Iterable[str] | None = None,
        max_tool_depth: int | None = None,
        max_tool_calls: int | None = None,
        tool_schemas: Mapping[str, dict[str, Any]] | None = None,
        source: str = "contract",
        ner: NerBackend | None = None,
        classifier: Classifier | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.packs = list(packs)
        disabled = set(disable)
        # A rule id names one rule: a later pack's rule replaces an earlier pack's rule with
        # the same id (pii.yaml's pii.email over default.yaml's), in the earlier one's place.
        by_id: dict[str, tuple[Rule, RulePack | None]] = {}
        for pack in self.packs:
            for rule in pack.rules:
                by_id[rule.id] = (rule, pack)
        problems = [
            Problem(source, "evals.policy.disable", f"no rule '{d}'{did_you_mean(d, by_id)}")
            for d in sorted(disabled - set(by_id))
        ]
        in_force = [(r, p) for r, p in by_id.values() if r.enabled and r.id not in disabled]
        deny = list(deny)
        if deny:
            in_force.append(
                (
                    DenylistRule(
                        id="contract.deny",
                        severity="high",
                        message="The contract denies this phrase for this agent; remove it from the answer.",
                        phrases=deny,
                    ),
                    None,
                )
            )
        self._settings = Settings(
            allow=(*allow, *(a for p in self.packs for a in p.allow)),
            canaries=tuple(c for c in canaries if c),
            system_prompt=system_prompt,
            tools=frozenset(tools or ()),
            max_tool_depth=max_tool_depth,
            max_tool_calls=max_tool_calls,
            tool_schemas=dict(tool_schemas or {}),
        )
        self._rules: list[Rule] = []
        for rule, pack_of in in_force:
            origin = pack_of.source if pack_of is not None else None
            try:
                self._rules.append(
                    rule.bind(self._settings, origin.parent if origin else Path.cwd())
                )
            except RuleSetupError as exc:
                field = f"rule {rule.id}" + (f": {exc.field}" if exc.field else "")
                where = display_path(origin) if origin else source
                problems.append(Problem(where, field, exc.message))
        if problems:
            raise UserError(problems)
        self._text_rules = [r for r in self._rules if isinstance(r, TextRule)]
        self._tool_rules = [r for r in self._rules if isinstance(r, ToolRule)]
        self._ner = ner
        self._classifier = classifier
        self._embedder = embedder

    @property
    def rules(self) -> list[Rule]:
        """The rules in force (enabled, not disabled by the contract), as this agent applies them."""
        return list(self._rules)

    @property
    def needs_models(self) -> bool:
        """Whether any rule in force loads a model (NER, classifier or embeddings)."""
        return any(r.models() for r in self._text_rules)

    # --- checking ----------------------------------------------------------------------

    def check(self, text: str) -> list[Violation]:
        """Every violation in an output ``text``, in order of position."""
        return self.check_many([Subject(output=text)])[0]

    def check_subject(self, subject: Subject) -> list[Violation]:
        """Every violation in one subject."""
        return self.check_many([subject])[0]

    def check_many(
        self, subjects: Sequence[Subject], *, all_scopes: bool = False
    ) -> list[list[Violation]]:
        """Violations per subject; models run once over the whole batch.

        Args:
            subjects: what to check.
            all_scopes: apply every text rule to the output, whatever its scope (for scoring
                loose texts, as ``impactgate judge policy`` does).
        """
        units = [
            [
                (rule, where, text)
                for rule in self._text_rules
                for scope in rule.scopes
                for where, text in subject.texts(scope)
            ]
            if not all_scopes
            else [(rule, "text", subject.output) for rule in self._text_rules]
            for subject in subjects
        ]
        ctx = self._context({m for us in units for r, _, t in us for m in r.model_inputs(t)})
        results = []
        for subject, subject_units in zip(subjects, units, strict=True):
            found: list[Violation] = []
            for rule, where, text in subject_units:
                found.extend(rule.find(where, text, subject, ctx))
            for tool_rule in self._tool_rules:
                found.extend(
                    _attributed(v, subject.tool_calls)
                    for v in tool_rule.check_calls(subject.tool_calls, ctx)
                )
            order = {"output": 0, "text": 0, "input": 1}
            results.append(
                sorted(found, key=lambda v: (order.get(v.where, 2), v.where, v.start, v.rule))
            )
        return results

    def _context(self, wanted: set[tuple[ModelName, str]]) -> Context:
        """What each model says about the strings the rules asked it to read, in one call each."""

        def strings(model: ModelName) -> list[str]:
            return sorted(s for m, s in wanted if m == model)

        entities: dict[str, list[Entity]] = {}
        probabilities: dict[str, float] = {}
        vectors: dict[str, Any] = {}
        if texts := strings("ner"):
            if self._ner is None:
                from evals.policy._ner import default_ner

                self._ner = default_ner()
            entities = dict(zip(texts, self._ner.entities(texts), strict=True))
        if texts := strings("classifier"):
            if self._classifier is None:
                from evals.policy._injection import default_classifier

                self._classifier = default_classifier()
            probabilities = dict(zip(texts, self._classifier.probabilities(texts), strict=True))
        if texts := strings("embedder"):
            if self._embedder is None:
                from evals.judges import default_embedder

                self._embedder = default_embedder()
            vectors = dict(zip(texts, self._embedder.encode(texts), strict=True))
        return Context(self._settings, entities, probabilities, vectors)


def tool_schemas_from_files(
    files: Mapping[str, str], resolve: Callable[[str], Path], source: str
) -> dict[str, dict[str, Any]]:
    """Load tool-argument JSON Schemas named in a contract.

    Raises:
        UserError: a file is missing, is not JSON, or is not a valid JSON Schema.
    """
    from jsonschema import exceptions, validators  # type: ignore[import-untyped]

    out: dict[str, dict[str, Any]] = {}
    problems = []
    for name, relative in files.items():
        path = resolve(relative)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            validators.validator_for(schema).check_schema(schema)
        except OSError as exc:
            problems.append(
                Problem(
                    source,
                    f"evals.policy.tool_schemas.{name}",
                    f"cannot read {relative}: {exc.strerror}",
                )
            )
            continue
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(
                    source,
                    f"evals.policy.tool_schemas.{name}",
                    f"{relative} is not JSON: {exc.msg}",
                )
            )
            continue
        except exceptions.SchemaError as exc:
            problems.append(
                Problem(
                    source,
                    f"evals.policy.tool_schemas.{name}",
                    f"{relative} is not a valid JSON Schema: {exc.message}",
                )
            )
            continue
        out[name] = schema
    if problems:
        raise UserError(problems)
    return out


_CALL = re.compile(r"^tool_calls\[(\d+)\]$")


def _attributed(violation: Violation, calls: Sequence[ToolCall]) -> Violation:
    """A tool call's violation naming the agent and span that made the call, when known."""
    match = _CALL.match(violation.where)
    if match is None:
        return violation
    call = calls[int(match.group(1))]
    if call.agent is None and call.span_id is None:
        return violation
    return replace(violation, agent=call.agent, span_id=call.span_id)
