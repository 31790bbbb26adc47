"""Latency: seconds per call, as timed by the target (or recorded with a replay)."""

from __future__ import annotations

from collections.abc import Sequence

from evals.dataset import Case
from evals.scorers._score import BatchScorer, Score, scorer
from evals.targets import Output

__all__ = ["latency"]


@scorer(name="latency")
def latency() -> BatchScorer:
    """Seconds the call took. Percentiles and their intervals are computed per run."""

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        return [
            Score(o.latency_s, None, f"{o.latency_s:.3f} s")
            if o.latency_s is not None
            else Score.failed("no latency was recorded for this call")
            for o in outputs
        ]

    return score
