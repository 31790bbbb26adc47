"""Masking what the store keeps: personal data and secrets, found by the contract's own packs.

Outputs, judge explanations and evidence (claims, supporting passages, quoted spans) can all
carry an email, a card number or an API key that a case put in front of the agent. Before a
run is written, every such text passes through a :class:`Masker` built from the personal-data
and secret rules of the contract's rule packs (whatever their scope: the masker reads every
text), so raw values never reach Parquet. Spans are replaced by the same masked forms the
policy scorer shows (``j***@mail.example``, ``****1111``), and the offsets of the policy
scorer's own findings are moved to where their masked forms now sit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from evals.policy._engine import PolicyEngine
from evals.policy._pack import RulePack
from evals.policy._rule import Subject, Violation

__all__ = ["MASKED_KINDS", "MASK_CACHE_SIZE", "Masked", "Masker", "replace_spans"]

MASK_CACHE_SIZE = 10_000
"""Texts whose masked form a :class:`Masker` remembers (the most recently used): repeated
explanations and passages are masked once, and a 100,000-case run does not keep them all."""

MASKED_KINDS = frozenset(
    {
        "email",
        "phone",
        "payment_card",
        "iban",
        "national_id",
        "ip_address",
        "person_name",
        "address",
        "date_of_birth",
        "api_key",
        "private_key",
    }
)
"""Rule kinds whose findings are personal data or secrets: what stored text never keeps."""


@dataclass(frozen=True)
class Masked:
    """A text with spans replaced, and how to move an offset of the original into it."""

    text: str
    spans: tuple[tuple[int, int, int], ...]
    """``(start, end, shift)`` of each replaced span in the original, in order: ``shift`` is
    how far everything after ``end`` moved."""

    def move(self, start: int, end: int) -> tuple[int, int]:
        """Where the original ``[start, end)`` is in the masked text.

        A side that falls inside a replaced span moves to that replacement's edge, so a
        replaced span maps onto its whole replacement.
        """
        return self._at(start, start_side=True), self._at(end, start_side=False)

    def _at(self, offset: int, *, start_side: bool) -> int:
        shift = 0
        for s, e, after in self.spans:
            if offset >= e:
                shift = after
                continue
            if offset > s:
                return s + shift if start_side else e + after
            break
        return offset + shift


def replace_spans(text: str, spans: Iterable[tuple[int, int, str]]) -> Masked:
    """Replace ``(start, end, replacement)`` spans of ``text``; overlaps keep the first."""
    parts: list[str] = []
    moved: list[tuple[int, int, int]] = []
    cursor = shift = 0
    for start, end, replacement in sorted(spans):
        if start < cursor or not 0 <= start < end <= len(text):
            continue
        parts.append(text[cursor:start])
        parts.append(replacement)
        shift += len(replacement) - (end - start)
        moved.append((start, end, shift))
        cursor = end
    parts.append(text[cursor:])
    return Masked("".join(parts), tuple(moved))


class Masker:
    """Finds and masks personal data and secrets in any text, with a contract's rule packs.

    Args:
        packs: the contract's rule packs; their rules of :data:`MASKED_KINDS` are used.
        allow: values the agent may echo (the contract's ``evals.policy.allow``): left as is.
        source: how to name the contract in error messages.
        engine: a ready engine to use instead (tests).
        cache_size: texts whose masked form is remembered (least recently used dropped first).
    """

    def __init__(
        self,
        packs: Sequence[RulePack] = (),
        allow: Iterable[str] = (),
        source: str = "contract",
        engine: PolicyEngine | None = None,
        cache_size: int = MASK_CACHE_SIZE,
    ) -> None:
        if engine is None:
            rules = [r for pack in packs for r in pack.rules if r.kind in MASKED_KINDS]
            if rules:
                pack = RulePack(
                    name="masking",
                    description="personal data and secrets, masked before anything is stored",
                    allow=sorted({a for p in packs for a in p.allow}),
                    rules=rules,
                )
                engine = PolicyEngine([pack], allow=allow, source=source)
        self._engine = engine
        self._cache: OrderedDict[str, Masked] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether any rule masks anything."""
        return self._engine is not None

    def mask_many(self, texts: Sequence[str]) -> list[Masked]:
        """Each text masked (the models run once over the texts not seen before)."""
        if self._engine is None:
            return [Masked(t, ()) for t in texts]
        known: dict[str, Masked] = {}
        with self._lock:
            for text in dict.fromkeys(texts):
                hit = self._cache.get(text) if text else None
                if hit is not None:
                    self._cache.move_to_end(text)
                    known[text] = hit
        fresh = [t for t in dict.fromkeys(texts) if t and t not in known]
        if fresh:
            found = self._engine.check_many([Subject(output=t) for t in fresh], all_scopes=True)
            masked = {
                text: replace_spans(text, _spans(violations))
                for text, violations in zip(fresh, found, strict=True)
            }
            known.update(masked)
            with self._lock:
                self._cache.update(masked)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return [known.get(t) or Masked(t, ()) for t in texts]

    def text(self, text: str | None) -> str | None:
        """One text masked."""
        if not text or self._engine is None:
            return text
        return self.mask_many([text])[0].text

    def value(self, value: Any) -> Any:
        """Every string inside ``value`` (dicts, lists, tuples) masked; keys are left alone."""
        if self._engine is None:
            return value
        strings: list[str] = []
        _collect(value, strings)
        masked = dict(zip(strings, (m.text for m in self.mask_many(strings)), strict=True))
        return _rebuild(value, masked)


def _spans(violations: Sequence[Violation]) -> list[tuple[int, int, str]]:
    return [(v.start, v.end, v.masked) for v in violations if v.end > v.start]


def _collect(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, into)


def _rebuild(value: Any, masked: dict[str, str]) -> Any:
    if isinstance(value, str):
        return masked.get(value, value)
    if isinstance(value, dict):
        return {k: _rebuild(v, masked) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebuild(v, masked) for v in value]
    if isinstance(value, tuple):
        return tuple(_rebuild(v, masked) for v in value)
    return value
