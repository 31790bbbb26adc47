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
        # A recording without a latency is not a failed case: the output exists and is scored
        # on everything else; latency is simply not measured (and a latency gate cannot pass).
        return [
            Score(o.latency_s, None, f"{o.latency_s:.3f} s")
            if o.latency_s is not None
            else Score(None, None, "not measured: no latency was recorded for this call")
            for o in outputs
        ]

    return score
