"""Three-valued verdicts: pass needs the whole interval; missing data never passes."""

from __future__ import annotations

import pytest

from evals.contract import Threshold
from evals.gates import Verdict, evaluate_gates, judge_gate
from evals.metrics import MetricValue


def metric(
    value: float | None,
    low: float | None,
    high: float | None,
    n: int = 50,
    name: str = "faithfulness",
) -> MetricValue:
    return MetricValue(name, value, low, high, n, 0, "bootstrap", 0.95)


@pytest.mark.parametrize(
    ("observed", "threshold", "verdict"),
    [
        (metric(0.95, 0.91, 0.98), Threshold(min=0.9), Verdict.PASS),
        (metric(0.92, 0.88, 0.96), Threshold(min=0.9), Verdict.INCONCLUSIVE),
        (metric(0.89, 0.85, 0.93), Threshold(min=0.9), Verdict.FAIL),
        (metric(0.90, 0.90, 0.90), Threshold(min=0.9), Verdict.PASS),
        (metric(0.02, 0.0, 0.04, name="hallucination_rate"), Threshold(max=0.05), Verdict.PASS),
        (
            metric(0.03, 0.01, 0.09, name="hallucination_rate"),
            Threshold(max=0.05),
            Verdict.INCONCLUSIVE,
        ),
        (metric(0.06, 0.03, 0.10, name="hallucination_rate"), Threshold(max=0.05), Verdict.FAIL),
        (metric(1.2, 1.0, None, name="latency_p95_s"), Threshold(max=2.0), Verdict.INCONCLUSIVE),
    ],
)
def test_three_valued_verdicts(
    observed: MetricValue, threshold: Threshold, verdict: Verdict
) -> None:
    assert judge_gate(observed, threshold, min_samples=30)[0] == verdict


def test_too_few_samples_is_inconclusive_never_pass() -> None:
    verdict, reason = judge_gate(metric(1.0, 0.99, 1.0, n=10), Threshold(min=0.9), min_samples=30)
    assert verdict == Verdict.INCONCLUSIVE
    assert "only 10 scored cases" in reason


def test_too_few_samples_still_fails_on_a_bad_point_estimate() -> None:
    verdict, _ = judge_gate(metric(0.5, 0.2, 0.8, n=10), Threshold(min=0.9), min_samples=30)
    assert verdict == Verdict.FAIL


def test_missing_metric_and_missing_value_fail_with_the_reason() -> None:
    assert judge_gate(None, Threshold(min=0.9), 30) == (
        Verdict.FAIL,
        "no data: the run did not measure this metric",
    )
    empty = MetricValue(
        "faithfulness", None, None, None, 0, 5, "bootstrap", 0.95, "no data: all 5 cases errored"
    )
    assert judge_gate(empty, Threshold(min=0.9), 30) == (
        Verdict.FAIL,
        "no data: all 5 cases errored",
    )


def test_evaluate_gates_marks_rollback_metrics_and_counts_error_budget_per_case() -> None:
    metrics = {
        "policy_violation_rate": metric(0.3, 0.2, 0.4, name="policy_violation_rate"),
        "error_rate": MetricValue("error_rate", 0.0, 0.0, 0.0, 5, 0, "count", 0.95),
    }
    gates = evaluate_gates(
        {"policy_violation_rate": Threshold(max=0.1), "error_rate": Threshold(max=0.05)},
        metrics,
        min_samples=30,
        rollback_on=frozenset({"policy_violation_rate"}),
    )
    by_metric = {g.metric: g for g in gates}
    assert by_metric["policy_violation_rate"].verdict == Verdict.FAIL
    assert by_metric["policy_violation_rate"].rollback
    # The error budget is spent by errors that happened: 5 clean cases pass it.
    assert by_metric["error_rate"].verdict == Verdict.PASS
