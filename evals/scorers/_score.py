"""Scores, scorer factories, and the rule that a crashing scorer never crashes a run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.dataset import Case
from evals.metrics import Suite
from evals.targets import Output

__all__ = ["BatchScorer", "Score", "ScorerFactory", "registered_scorers", "run_scorer", "scorer"]


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one case."""

    value: float | None
    """The measured number (a share, 0/1 for an event, USD, seconds); ``None`` on error."""
    passed: bool | None
    """Whether the case is fine on this scorer; ``None`` when the scorer does not judge."""
    explanation: str
    """Why, in words a product manager can read."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Evidence (claims, rules, prices) for a reviewer."""
    error: str | None = None
    """Why the case could not be scored; counts against the error budget."""

    @classmethod
    def failed(cls, error: str) -> Score:
        """A case that could not be scored."""
        return cls(None, None, f"not scored: {error}", error=error)


BatchScorer = Callable[[Sequence[Case], Sequence[Output]], list[Score]]
"""Scores a batch of cases with their outputs (outputs without errors only)."""

ScorerFactory = Callable[..., BatchScorer]


@dataclass(frozen=True)
class _Registered:
    name: str
    suite: Suite
    factory: ScorerFactory


_REGISTRY: dict[str, _Registered] = {}


def scorer(*, name: str, suite: Suite) -> Callable[[ScorerFactory], ScorerFactory]:
    """Register a scorer factory: keyword-only options in, a batch scoring callable out."""

    def register(factory: ScorerFactory) -> ScorerFactory:
        _REGISTRY[name] = _Registered(name, suite, factory)
        return factory

    return register


def registered_scorers() -> dict[str, tuple[Suite, ScorerFactory]]:
    """Scorer name → (suite, factory)."""
    return {name: (r.suite, r.factory) for name, r in _REGISTRY.items()}


def _crash(name: str, exc: BaseException) -> Score:
    return Score.failed(f"scorer '{name}' crashed: {type(exc).__name__}: {exc}")


def run_scorer(
    name: str, score: BatchScorer, cases: Sequence[Case], outputs: Sequence[Output]
) -> list[Score]:
    """Score every case; cases without output and scorer crashes become recorded errors.

    The batch is scored in one call; if that call raises, each case is retried alone so one
    bad case cannot take the others down with it.
    """
    results: list[Score | None] = [
        Score.failed(f"no output: {o.error}") if o.error is not None or o.text is None else None
        for o in outputs
    ]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        batch_cases = [cases[i] for i in todo]
        batch_outputs = [outputs[i] for i in todo]
        try:
            scored = score(batch_cases, batch_outputs)
            if len(scored) != len(todo):
                raise RuntimeError(f"returned {len(scored)} scores for {len(todo)} cases")
        except Exception:
            scored = []
            for case, output in zip(batch_cases, batch_outputs, strict=True):
                try:
                    scored.extend(score([case], [output]))
                except Exception as exc:
                    scored.append(_crash(name, exc))
        for i, result in zip(todo, scored, strict=True):
            results[i] = result
    return [r for r in results if r is not None]
