"""Online evals: production traces judged like golden cases, sampled within a budget.

- :func:`trace_summaries` / :func:`build_cases`: an agent's traces of a window, and a trace as
  a case (input, passages, output, tool calls with depth and agent, latency, tokens, cost);
- :func:`draw_sample`: seeded, stratified, every error and escalation kept;
- :func:`plan_production`: the sample of a run with the window's own error rate, cost and
  latency (``RunSession.open_production`` runs it through the engine);
- :func:`monitored_gates`: nightly verdicts on sampled metrics with anytime-valid evidence;
- :func:`drift` / :func:`drift_gates`: production against golden per quality metric, gated as
  ``<metric>_drift``;
- :func:`golden_coverage` / :func:`suggest_cases`: how much production traffic the golden set
  covers, the uncovered clusters, and candidate cases from them.

See docs/online.md and docs/design/online.md.
"""

from evals.online._coverage import (
    Coverage,
    UncoveredCluster,
    golden_coverage,
    production_inputs,
    suggest_cases,
)
from evals.online._drift import DriftRow, drift, drift_gates
from evals.online._monitor import (
    earlier_nights,
    monitored,
    monitored_gates,
    night_log_evalue,
)
from evals.online._production import (
    GROUNDING_SUITES,
    REFERENCE_SCORERS,
    ProductionPlan,
    cached_scores,
    measure_coverage,
    needs_production,
    parse_window,
    plan_production,
    population_metrics,
)
from evals.online._sample import Sample, draw_sample
from evals.online._target import TraceTarget
from evals.online._traces import (
    LLM_OPERATIONS,
    QUERY_MEMORY,
    TraceCase,
    TraceSummary,
    build_cases,
    span_tree,
    trace_cases,
    trace_summaries,
)

__all__ = [
    "GROUNDING_SUITES",
    "LLM_OPERATIONS",
    "QUERY_MEMORY",
    "REFERENCE_SCORERS",
    "Coverage",
    "DriftRow",
    "ProductionPlan",
    "Sample",
    "TraceCase",
    "TraceSummary",
    "TraceTarget",
    "UncoveredCluster",
    "build_cases",
    "cached_scores",
    "draw_sample",
    "drift",
    "drift_gates",
    "earlier_nights",
    "golden_coverage",
    "measure_coverage",
    "monitored",
    "monitored_gates",
    "needs_production",
    "night_log_evalue",
    "parse_window",
    "plan_production",
    "population_metrics",
    "production_inputs",
    "span_tree",
    "suggest_cases",
    "trace_cases",
    "trace_summaries",
]
