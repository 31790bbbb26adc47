"""Applying rule packs to text: violations with masked spans and actionable messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from evals.policy._detectors import (
    Match,
    find_cards,
    find_emails,
    find_ibans,
    find_phones,
    find_phrases,
    find_regex,
    mask,
)
from evals.policy._pack import Rule, RulePack

__all__ = ["PolicyEngine", "Violation"]


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

    def describe(self) -> str:
        """One line for a person."""
        return f"{self.rule} ({self.severity}): '{self.masked}' at {self.start}-{self.end}. {self.message}"


def _normalise(kind: str, value: str) -> str:
    if kind in {"phone", "payment_card", "iban"}:
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return value.strip().lower()


class PolicyEngine:
    """Rule packs plus an agent's own allowlist and extra denied phrases."""

    def __init__(
        self, packs: Iterable[RulePack], allow: Iterable[str] = (), deny: Iterable[str] = ()
    ) -> None:
        self.packs = list(packs)
        self._rules: list[Rule] = [r for p in self.packs for r in p.rules if r.enabled]
        deny = list(deny)
        if deny:
            self._rules.append(
                Rule(
                    id="contract.deny",
                    kind="denylist",
                    severity="high",
                    message="The contract denies this phrase for this agent; remove it from the answer.",
                    phrases=deny,
                )
            )
        allowed = [*allow, *(a for p in self.packs for a in p.allow)]
        self._allowed_domains = {a[2:].lower() for a in allowed if a.startswith("*@")}
        self._allowed_values = [a for a in allowed if not a.startswith("*@")]
        self._regexes = {r.id: re.compile(r.pattern) for r in self._rules if r.pattern}

    def _allowed(self, kind: str, value: str) -> bool:
        if kind == "email" and value.rpartition("@")[2].lower() in self._allowed_domains:
            return True
        key = _normalise(kind, value)
        return any(_normalise(kind, a) == key for a in self._allowed_values)

    def _matches(self, rule: Rule, text: str) -> Iterator[Match]:
        if rule.kind == "email":
            return find_emails(text)
        if rule.kind == "phone":
            return find_phones(text)
        if rule.kind == "payment_card":
            return find_cards(text)
        if rule.kind == "iban":
            return find_ibans(text)
        if rule.kind == "regex":
            return find_regex(text, self._regexes[rule.id])
        return find_phrases(text, rule.phrases)

    def check(self, text: str) -> list[Violation]:
        """Every violation in ``text``, in order of position."""
        found = []
        for rule in self._rules:
            for match in self._matches(rule, text):
                if self._allowed(rule.kind, match.text):
                    continue
                found.append(
                    Violation(
                        rule.id,
                        rule.kind,
                        rule.severity,
                        rule.message,
                        mask(rule.kind, match.text),
                        match.start,
                        match.end,
                    )
                )
        return sorted(found, key=lambda v: (v.start, v.rule))
