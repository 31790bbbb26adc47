"""The masking telemetry passes through before it is stored: the same as a run's outputs.

An agent's spans are masked with the personal-data and secret rules of its contract's rule
packs and allowlist (``evals.policy.rule_packs`` / ``allow`` of ``<policies>/<agent>.yaml``,
exactly what ``evals.scorers.build_masker`` builds for a run), and kept as the contract's
``evals.store_outputs`` says (``masked``, ``raw`` or ``none``). An agent without a contract
gets the repository's default packs (``policies/rules/default.yaml`` and ``pii.yaml``), masked.

Texts repeat a lot in telemetry (system prompts, retrieved passages, tool arguments), so each
distinct text is masked once: :class:`evals.policy.Masker` caches what it has seen, and it is
replaced by a fresh one after ``cache_size`` distinct texts so memory stays bounded however
much is ingested.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from evals.errors import Problem, UserError, display_path
from evals.policy import MASKED_KINDS, Masker, RulePack, load_rule_pack

__all__ = ["DEFAULT_PACKS", "MaskMode", "MaskSlot", "TelemetryMasker"]

MaskMode = Literal["masked", "raw", "none"]

DEFAULT_PACKS = ("rules/default.yaml", "rules/pii.yaml")
"""Rule packs (relative to the policies folder) for agents without a contract."""


class _Screen:
    """The agents' shared first look: which texts any of their rules finds anything in.

    Agents whose packs have the same masking rules differ only in their allowlists, and an
    allowlist only lets findings through: a text in which the rules with no allowlist find
    nothing is left as it is for every one of those agents. So each distinct text is scanned
    once for all of them, and only the texts with a finding are masked by each agent's own
    masker. Used only when no rule reads a model (a model's findings can depend on the batch
    it reads).
    """

    def __init__(self, packs: Sequence[RulePack], source: str, cache_size: int) -> None:
        self._packs = list(packs)
        self._source = source
        self._cache_size = cache_size
        self._masker = self._new()
        self._seen = 0

    def _new(self) -> Masker:
        return Masker(self._packs, source=self._source)

    def suspects(self, texts: list[str]) -> list[str]:
        """The distinct ``texts`` in which some rule finds something, allowed or not."""
        if self._seen + len(texts) > self._cache_size:
            self._masker = self._new()  # drop the old cache: memory stays bounded
            self._seen = 0
        self._seen += len(texts)
        found = self._masker.mask_many(texts)
        return [t for t, m in zip(texts, found, strict=True) if m.spans]


def _screen_key(packs: Sequence[RulePack]) -> str | None:
    """What makes two agents' masking rules the same; ``None`` if a rule reads a model."""
    rules = [r for pack in packs for r in pack.rules if r.kind in MASKED_KINDS]
    for rule in rules:
        models = getattr(rule, "models", None)  # text rules say which models they read
        if models is None or models():
            return None
    allow = sorted({a for pack in packs for a in pack.allow})
    return json.dumps([allow, [r.model_dump(mode="json") for r in rules]], sort_keys=True)


class MaskSlot:
    """One agent's masking: its packs and allowlist, what it keeps, and the texts seen.

    Args:
        packs: the rule packs whose personal-data and secret rules mask.
        allow: values the agent may echo, left as they are.
        mode: ``masked``, ``raw`` (kept as sent) or ``none`` (content left out).
        source: the contract, for messages.
        cache_size: distinct texts remembered before the masker starts afresh.
        screen: the first look shared with agents whose rules are the same (see
            :class:`_Screen`), if any.
    """

    def __init__(
        self,
        packs: Sequence[RulePack],
        allow: Iterable[str],
        mode: MaskMode,
        source: str,
        cache_size: int,
        screen: _Screen | None = None,
    ) -> None:
        self.mode: MaskMode = mode
        self.source = source
        self._packs = list(packs)
        self._allow = list(allow)
        self._cache_size = cache_size
        self._masker = self._new()
        self._seen = 0
        self._screen = screen

    def _new(self) -> Masker:
        return Masker(_distinct_rules(self._packs), allow=self._allow, source=self.source)

    @property
    def active(self) -> bool:
        """Whether anything is masked (``masked`` mode with at least one masking rule)."""
        return self.mode != "raw" and self._masker.active

    def mask(self, texts: Iterable[str]) -> dict[str, str]:
        """Each distinct text masked; only texts that changed are in the result."""
        distinct = [t for t in dict.fromkeys(texts) if t]
        if not distinct or not self.active:
            return {}
        if self._screen is not None:
            distinct = self._screen.suspects(distinct)
            if not distinct:
                return {}
        if self._seen + len(distinct) > self._cache_size:
            self._masker = self._new()  # drop the old cache: memory stays bounded
            self._seen = 0
        self._seen += len(distinct)
        masked = self._masker.mask_many(distinct)
        return {t: m.text for t, m in zip(distinct, masked, strict=True) if m.text != t}


def _distinct_rules(packs: Sequence[RulePack]) -> list[RulePack]:
    """The packs with a rule id given twice kept once (the first pack's).

    ``default.yaml`` and ``pii.yaml`` both define ``pii.email``, ``pii.phone`` …; the masker
    joins every pack's rules into one pack, whose rule ids must be unique.
    """
    seen: set[str] = set()
    distinct = []
    for pack in packs:
        rules = [r for r in pack.rules if r.id not in seen]
        seen.update(r.id for r in rules)
        distinct.append(pack.model_copy(update={"rules": rules}))
    return distinct


@dataclass
class _Contract:
    packs: list[RulePack]
    allow: list[str]
    mode: MaskMode
    source: str


class TelemetryMasker:
    """The masking of each agent's telemetry, from the contracts in a policies folder.

    Args:
        policies: the folder of contracts (``<agent>.yaml``) and rule packs (``rules/``);
            ``None`` for none (every agent gets ``default_packs``).
        default_packs: rule pack files for agents without a contract; relative paths are
            read from ``policies`` (by default its ``rules/default.yaml`` and ``rules/pii.yaml``).
        cache_size: distinct texts each agent's masker remembers (see :class:`MaskSlot`).

    Raises:
        UserError: a default rule pack is missing or invalid.
    """

    def __init__(
        self,
        policies: str | Path | None = "policies",
        default_packs: Sequence[str | Path] = DEFAULT_PACKS,
        cache_size: int = 200_000,
    ) -> None:
        self.policies = Path(policies) if policies is not None else None
        self.cache_size = cache_size
        self.warnings: list[Problem] = []
        self.default_packs = [self._resolve(p) for p in default_packs]
        """The default packs' files, resolved."""
        self._default: MaskSlot | None = None
        self._slots: dict[str, MaskSlot] = {}
        self._screens: dict[str, _Screen] = {}

    def _resolve(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_absolute() or self.policies is None:
            return path
        return self.policies / path

    def _default_slot(self) -> MaskSlot:
        if self._default is None:
            packs = [load_rule_pack(p) for p in self.default_packs if p.is_file()]
            if not packs:
                shown = ", ".join(display_path(p) for p in self.default_packs)
                raise UserError.single(
                    shown,
                    "",
                    "no default rule pack to mask telemetry of agents without a contract; "
                    "pass --policies with a rules/ folder",
                )
            self._default = MaskSlot(packs, (), "masked", "default rule packs", self.cache_size)
        return self._default

    def _contract(self, agent: str) -> _Contract | None:
        if self.policies is None:
            return None
        path = self.policies / f"{agent}.yaml"
        if not path.is_file():
            return None
        from evals.contract import load_contract

        try:
            contract = load_contract(path)
            config = contract.evals.policy
            packs = [load_rule_pack(contract.resolve(p)) for p in config.rule_packs]
        except UserError as exc:
            self.warnings.append(
                Problem(
                    display_path(path),
                    "",
                    f"does not load ({exc.problems[0].message}); its telemetry is masked with "
                    "the default rule packs",
                )
            )
            return None
        return _Contract(
            packs, list(config.allow), contract.evals.store_outputs, display_path(path)
        )

    def _screen(self, packs: Sequence[RulePack], source: str) -> _Screen | None:
        """The first look shared by the agents whose masking rules are ``packs``'."""
        distinct = _distinct_rules(packs)
        key = _screen_key(distinct)
        if key is None:
            return None
        screen = self._screens.get(key)
        if screen is None:
            screen = self._screens[key] = _Screen(distinct, source, self.cache_size)
        return screen

    def for_agent(self, agent: str) -> MaskSlot:
        """The masking of one agent's telemetry."""
        slot = self._slots.get(agent)
        if slot is None:
            found = self._contract(agent)
            if found is None:
                slot = self._default_slot()
            else:
                slot = MaskSlot(
                    found.packs, found.allow, found.mode, found.source, self.cache_size,
                    self._screen(found.packs, found.source),
                )  # fmt: skip
            self._slots[agent] = slot
        return slot
