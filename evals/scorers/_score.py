"""Scores, scorer factories, and the rule that a crashing scorer never crashes a run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.contract import Contract
from evals.dataset import Case
from evals.metrics import METRICS, Suite
from evals.targets import Output

__all__ = [
    "BatchScorer",
    "Options",
    "RegisteredScorer",
    "Score",
    "ScorerFactory",
    "build_scorers",
    "registered_scorers",
    "run_scorer",
    "scorer",
]


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

    @classmethod
    def skipped(cls, reason: str) -> Score:
        """A case this scorer does not apply to (left out of its metric, not an error)."""
        return cls(None, None, f"not judged: {reason}", {"skipped": reason})

    @property
    def is_skipped(self) -> bool:
        """The scorer did not apply to the case (see :meth:`skipped`)."""
        return self.error is None and self.value is None and "skipped" in self.metadata


BatchScorer = Callable[[Sequence[Case], Sequence[Output]], list[Score]]
"""Scores a batch of cases with their outputs (outputs without errors only)."""

ScorerFactory = Callable[..., BatchScorer]


Options = Callable[["Contract"], dict[str, Any]]
"""A contract → the keyword options its scorer factory is called with."""


def _no_options(contract: Contract) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class RegisteredScorer:
    """A scorer factory with everything needed to build it for a contract."""

    name: str
    suite: Suite
    """The suite that runs it (from the metrics it feeds)."""
    metrics: tuple[str, ...]
    """The metrics that aggregate its per-case values."""
    factory: ScorerFactory
    options: Options

    def build(self, contract: Contract) -> BatchScorer:
        """The batch scorer configured as the contract says."""
        return self.factory(**self.options(contract))


_REGISTRY: dict[str, RegisteredScorer] = {}


def scorer(
    *, name: str, options: Options = _no_options
) -> Callable[[ScorerFactory], ScorerFactory]:
    """Register a scorer factory: keyword-only options in, a batch scoring callable out.

    The metrics registry (``evals.metrics.METRICS``) says which metrics aggregate the scorer
    and so which suite runs it; ``options`` reads the factory's keyword options from a
    contract. A new scorer is this decorator on its factory plus the metrics it feeds.

    Raises:
        ValueError: no metric aggregates a scorer of this name, or it is registered twice.
    """
    fed = tuple(spec.name for spec in METRICS.values() if spec.scorer == name)
    suites = {METRICS[m].suite for m in fed}
    if not fed or len(suites) != 1 or None in suites:
        raise ValueError(
            f"scorer '{name}': exactly one suite's metrics must name it in METRICS "
            f"(found metrics {list(fed)})"
        )

    def register(factory: ScorerFactory) -> ScorerFactory:
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"scorer '{name}' is registered twice")
        suite: Suite = suites.pop()  # type: ignore[assignment]
        _REGISTRY[name] = RegisteredScorer(name, suite, fed, factory, options)
        return factory

    return register


def registered_scorers() -> dict[str, RegisteredScorer]:
    """Every registered scorer by name."""
    return dict(_REGISTRY)


def build_scorers(contract: Contract) -> dict[str, BatchScorer]:
    """Scorer name → configured batch scorer, for every suite the contract runs, in suite order."""
    suites = contract.evals.suites
    return {
        registered.name: registered.build(contract)
        for suite in suites
        for registered in _REGISTRY.values()
        if registered.suite == suite
    }


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
