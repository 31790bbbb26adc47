"""What a run's cases add up to, kept as they stream past: each metric's values and the counts.

A run walks its dataset in batches (:meth:`evals.runs.RunSession.run`); each scored batch is
written to the store and added here, then dropped. Only one number per case and metric is
kept (8 bytes in an ``array``), so a 100,000-case run holds a few megabytes where its cases,
outputs and scores would take gigabytes; the metrics, their intervals and the gates are
computed from these values at the end, exactly as from the cases themselves.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evals.labelling import AGREEMENT, POLICY_AGREEMENT
from evals.metrics import METRICS

if TYPE_CHECKING:
    from evals.runs._run import CaseResult
    from evals.targets import Output

__all__ = ["RunTally"]

TALLIED = tuple(name for name in METRICS if name not in (AGREEMENT, POLICY_AGREEMENT))
"""Metrics aggregated from the cases (the agreement metrics are measured against labels)."""


@dataclass
class RunTally:
    """Per-metric values and the counts of a run's cases, added batch by batch."""

    suites: tuple[str, ...]
    """The contract's suites: a metric of a suite the run does not have is not measured."""
    values: dict[str, array[float]] = field(default_factory=dict)
    """Metric → one value per case it applies to (NaN: the scorer errored on that case)."""
    cases: int = 0
    cached: int = 0
    """Outputs taken from the output cache."""
    called: int = 0
    """Outputs the target produced in this session (neither cached nor resumed)."""
    failed: int = 0
    """Cases that got no output."""
    first_failure: tuple[str, str] | None = None
    """The first case that got no output, and why."""
    usage_counted: int = 0
    """Outputs whose tokens were counted locally (the provider reported none)."""

    def __post_init__(self) -> None:
        for name in TALLIED:
            spec = METRICS[name]
            if spec.kind == "count_rate" or spec.suite in self.suites:
                self.values.setdefault(name, array("d"))

    def add(
        self,
        results: Sequence[CaseResult],
        *,
        estimate: Sequence[bool] | None = None,
        resumed: Collection[str] = (),
    ) -> None:
        """Add a batch of scored cases.

        Args:
            results: the batch, as the store keeps it.
            estimate: per case, whether it enters the metrics (default: all); a production
                run scores the traces it kept on purpose but estimates from its sample.
            resumed: ids of cases a resumed run took from its journal.
        """
        self.count(r.output for r in results)
        self.called += sum(not r.output.cached and r.case.id not in resumed for r in results)
        counted = (
            results
            if estimate is None
            else [r for r, kept in zip(results, estimate, strict=True) if kept]
        )
        for name, values in self.values.items():
            spec = METRICS[name]
            if spec.kind == "count_rate":
                values.extend(1.0 if r.errored else 0.0 for r in counted)
                continue
            assert spec.scorer is not None
            for result in counted:
                found = result.scores[spec.scorer]
                if not found.is_skipped:
                    value = found.value if found.error is None else None
                    values.append(math.nan if value is None else float(value))

    def count(self, outputs: Iterable[Output]) -> None:
        """Count where outputs came from and which failed (no metric values)."""
        for output in outputs:
            self.cases += 1
            self.cached += output.cached
            self.usage_counted += output.usage_counted
            if output.error is not None:
                self.failed += 1
                if self.first_failure is None:
                    self.first_failure = (output.case_id, output.error)

    def metric_values(self, name: str) -> list[float | None] | None:
        """One value per case for a metric (``None``: errored), or ``None``: not measured."""
        values = self.values.get(name)
        if values is None:
            return None
        return [None if math.isnan(v) else v for v in values]

    def notes(self, resumed: int = 0) -> list[str]:
        """What a reader of the run should know about where its outputs came from."""
        n = self.cases
        notes = []
        if self.cached:
            notes.append(
                f"{self.cached} of {n} outputs came from the output cache; their latency, usage "
                "and cost are those measured by the run that produced them"
            )
        if resumed:
            notes.append(f"resumed: {resumed} of {n} outputs were produced before the interruption")
        if self.usage_counted:
            notes.append(
                f"{self.usage_counted} of {n} outputs: the provider reported no token usage, so "
                "tokens were counted locally with litellm's tokenizer and cost is priced from "
                "that count"
            )
        if self.first_failure is not None:
            case_id, error = self.first_failure
            notes.append(
                f"{self.failed} of {n} cases got no output (they count against the error "
                f"budget); first: {case_id}: {error}"
            )
        return notes
