"""Metrics: the closed set of names, aggregation with intervals, and the interval maths."""

from evals.metrics._aggregate import MetricValue, aggregate
from evals.metrics._agreement import Agreement, Estimate, judge_agreement, labels_needed
from evals.metrics._calibration import (
    AgreementDrift,
    Calibration,
    CalibrationError,
    Objective,
    agreement_drift,
    apply_calibration,
    fit_calibration,
)
from evals.metrics._format import fmt_delta, fmt_interval, fmt_time, fmt_unit, fmt_value, unit_of
from evals.metrics._paired import Change, PairedDelta, compare_paired, mcnemar_worse_p
from evals.metrics._power import SampleSizePlan, required_samples
from evals.metrics._quality import Confusion, roc_auc
from evals.metrics._registry import (
    DRIFT_METRICS,
    METRICS,
    PRODUCTION_METRICS,
    SUITES,
    TELEMETRY_METRICS,
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
    mean_interval,
    quantile_interval,
    wilson_interval,
)

__all__ = [
    "DRIFT_METRICS",
    "METRICS",
    "PRODUCTION_METRICS",
    "SUITES",
    "TELEMETRY_METRICS",
    "Agreement",
    "AgreementDrift",
    "Calibration",
    "CalibrationError",
    "Change",
    "Confusion",
    "Estimate",
    "MetricKind",
    "MetricSpec",
    "MetricValue",
    "MonitorResult",
    "Objective",
    "PairedDelta",
    "SampleSizePlan",
    "Suite",
    "aggregate",
    "agreement_drift",
    "apply_calibration",
    "binomial_cdf",
    "binomial_sf",
    "bootstrap_mean_interval",
    "compare_paired",
    "fit_calibration",
    "fmt_delta",
    "fmt_interval",
    "fmt_time",
    "fmt_unit",
    "fmt_value",
    "judge_agreement",
    "labels_needed",
    "mcnemar_worse_p",
    "mean_interval",
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
