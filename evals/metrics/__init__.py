"""Metrics: the closed set of names, aggregation with intervals, and the interval maths."""

from evals.metrics._aggregate import MetricValue, aggregate
from evals.metrics._format import fmt_delta, fmt_interval, fmt_time, fmt_value, unit_of
from evals.metrics._paired import Change, PairedDelta, compare_paired, mcnemar_worse_p
from evals.metrics._power import SampleSizePlan, required_samples
from evals.metrics._quality import Confusion, roc_auc
from evals.metrics._registry import (
    METRICS,
    PRODUCTION_METRICS,
    SUITES,
    MetricKind,
    MetricSpec,
    Suite,
    metric_names,
)
from evals.metrics._sequential import (
    MonitorResult,
    mean_log_evalue,
    mixture_log_evidence,
    monitor,
    rate_log_evalue,
)
from evals.metrics._stats import (
    binomial_cdf,
    binomial_sf,
    bootstrap_mean_interval,
    quantile_interval,
    wilson_interval,
)

__all__ = [
    "METRICS",
    "PRODUCTION_METRICS",
    "SUITES",
    "Change",
    "Confusion",
    "MetricKind",
    "MetricSpec",
    "MetricValue",
    "MonitorResult",
    "PairedDelta",
    "SampleSizePlan",
    "Suite",
    "aggregate",
    "binomial_cdf",
    "binomial_sf",
    "bootstrap_mean_interval",
    "compare_paired",
    "fmt_delta",
    "fmt_interval",
    "fmt_time",
    "fmt_value",
    "mcnemar_worse_p",
    "mean_log_evalue",
    "metric_names",
    "mixture_log_evidence",
    "monitor",
    "quantile_interval",
    "rate_log_evalue",
    "required_samples",
    "roc_auc",
    "unit_of",
    "wilson_interval",
]
