"""Which production traces a run judges: seeded, stratified, every error and escalation kept.

The traces of the window that ended in an error or were escalated are all kept (``forced``):
they are the ones a person wants to look at, and they are rare. The others are drawn ``n`` in
all, split across strata (route × tool path × outcome by default) in proportion to each
stratum's traffic (largest remainders), so the proportional part is a self-weighting sample
of the traffic: a production run estimates its quality metrics from it alone, and the forced
traces are judged and shown without tilting the estimate. Within a stratum a trace's place is
the SHA-256 of the seed and its id, so the same window and seed draw the same sample on any
machine, and a new window draws a new one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from evals.online._traces import TraceSummary

__all__ = ["Sample", "draw_sample"]


@dataclass(frozen=True)
class Sample:
    """The traces a run judges."""

    proportional: list[TraceSummary]
    """Drawn in proportion to the traffic: the metrics are estimated from these."""
    forced: list[TraceSummary]
    """Errors and escalations not drawn above, kept because every one is."""
    population: int
    """Traces in the window."""
    strata: dict[tuple[str, ...], tuple[int, int]]
    """Stratum → (traces in the window that could be drawn, traces drawn)."""

    @property
    def traces(self) -> list[TraceSummary]:
        """Every trace to judge: the proportional ones, then the forced ones."""
        return [*self.proportional, *self.forced]


def _rank(seed: str, trace_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{trace_id}".encode()).digest()


def draw_sample(traces: Sequence[TraceSummary], n: int, strata: Sequence[str], seed: str) -> Sample:
    """Draw the sample (see the module docstring).

    Args:
        traces: every trace of the window.
        n: traces to draw in proportion to the traffic (errors are never drawn: every error
            is kept anyway, and an error has no answer to judge).
        strata: what to stratify by (``route``, ``tool_path``, ``outcome``).
        seed: the contract's seed and the window, as text.
    """
    groups: dict[tuple[str, ...], list[TraceSummary]] = {}
    forced: list[TraceSummary] = []
    for trace in traces:
        if trace.error is not None:
            forced.append(trace)
        else:
            groups.setdefault(trace.stratum(strata), []).append(trace)
    eligible = sum(len(g) for g in groups.values())
    take = min(n, eligible)
    quotas = _allocate({k: len(g) for k, g in groups.items()}, take)
    chosen: list[TraceSummary] = []
    counts: dict[tuple[str, ...], tuple[int, int]] = {}
    for key in sorted(groups):
        group = groups[key]
        quota = quotas.get(key, 0)
        picked = sorted(group, key=lambda t: _rank(seed, t.trace_id))[:quota] if quota else []
        chosen.extend(picked)
        counts[key] = (len(group), len(picked))
    drawn = {t.trace_id for t in chosen}
    forced.extend(t for t in traces if t.escalated and t.error is None and t.trace_id not in drawn)
    chosen.sort(key=lambda t: (t.start, t.trace_id))
    forced.sort(key=lambda t: (t.start, t.trace_id))
    return Sample(chosen, forced, len(traces), counts)


def _allocate(sizes: dict[tuple[str, ...], int], n: int) -> dict[tuple[str, ...], int]:
    """``n`` split across strata in proportion to their sizes (largest remainders).

    Ties in the remainders go to the larger stratum, then to the stratum's key, so the split
    does not depend on the order the strata were found in.
    """
    total = sum(sizes.values())
    if n <= 0 or total == 0:
        return {}
    exact = {k: n * size / total for k, size in sizes.items()}
    quotas = {k: math.floor(v) for k, v in exact.items()}
    left = n - sum(quotas.values())
    order = sorted(sizes, key=lambda k: (-(exact[k] - quotas[k]), -sizes[k], k))
    for key in order[:left]:
        quotas[key] += 1
    return quotas
