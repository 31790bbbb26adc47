"""Metrics: the closed set of names, aggregation with intervals, and the interval maths."""

from evals.metrics._aggregate import MetricValue, aggregate
from evals.metrics._registry import METRICS, SUITES, MetricKind, MetricSpec, Suite, metric_names
from evals.metrics._stats import (
    binomial_cdf,
    bootstrap_mean_interval,
    quantile_interval,
    wilson_interval,
)

__all__ = [
    "METRICS",
    "SUITES",
    "MetricKind",
    "MetricSpec",
    "MetricValue",
    "Suite",
    "aggregate",
    "binomial_cdf",
    "bootstrap_mean_interval",
    "metric_names",
    "quantile_interval",
    "wilson_interval",
]
