"""Paired comparisons and sample sizes: exact values, and behaviour proved by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from evals.metrics import METRICS, Change, compare_paired, mcnemar_worse_p, required_samples

HALLUCINATION = METRICS["hallucination_rate"]
FAITHFULNESS = METRICS["faithfulness"]


def as_cases(values: np.ndarray) -> dict[str, list[float]]:
    return {
        f"c{i:03d}": [float(v)] if np.ndim(v) == 0 else [float(x) for x in v]
        for i, v in enumerate(values)
    }


def test_mcnemar_exact_values() -> None:
    base = np.zeros(10, bool)
    cand = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    assert mcnemar_worse_p(base, cand) == pytest.approx(0.5**5)
    assert mcnemar_worse_p(cand, base) == pytest.approx(1.0)
    assert mcnemar_worse_p(base, base) == 1.0


def test_an_identical_candidate_is_no_change_with_a_zero_width_interval() -> None:
    values = as_cases(np.linspace(0.5, 1.0, 40))
    result = compare_paired(FAITHFULNESS, values, values, min_samples=30)
    assert result.change == Change.NO_CHANGE
    assert (result.delta, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.worse == []
    assert result.better == []


def test_a_real_regression_names_the_cases_that_got_worse() -> None:
    base = np.zeros(60)
    cand = np.zeros(60)
    cand[[3, 7, 11, 19, 23, 31, 42, 50]] = 1.0  # eight answers now hallucinate
    result = compare_paired(HALLUCINATION, as_cases(base), as_cases(cand), min_samples=30)
    assert result.change == Change.REGRESSION
    assert result.delta == pytest.approx(8 / 60)
    assert result.worse == ["c003", "c007", "c011", "c019", "c023", "c031", "c042", "c050"]
    assert result.p_value == pytest.approx(0.5**8)
    assert "McNemar" in result.reason


def test_too_few_paired_cases_is_inconclusive() -> None:
    result = compare_paired(
        HALLUCINATION, as_cases(np.zeros(10)), as_cases(np.ones(10)), min_samples=30
    )
    assert result.change == Change.INCONCLUSIVE
    assert "fewer than the 30 cases needed" in result.reason


def test_only_cases_on_both_sides_are_compared() -> None:
    base = {"a": [0.9], "b": [0.8], "c": [0.1]}
    cand = {"a": [0.9], "b": [0.8], "d": [0.0]}
    assert compare_paired(FAITHFULNESS, base, cand).n == 2


def test_identical_noisy_versions_are_called_a_regression_at_most_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(1234)
    trials, regressions = 200, 0
    for _ in range(trials):
        truth = rng.beta(8, 2, size=50)  # each case has its own difficulty
        # A noisy judge scores each case 3 times per version, around the same truth.
        base = np.clip(truth[:, None] + rng.normal(0, 0.1, (50, 3)), 0, 1)
        cand = np.clip(truth[:, None] + rng.normal(0, 0.1, (50, 3)), 0, 1)
        result = compare_paired(FAITHFULNESS, as_cases(base), as_cases(cand), resamples=500)
        regressions += result.change == Change.REGRESSION
    # Nominal: (1 - 0.95) / 2 = 2.5% of trials; allow binomial slack over 200 trials.
    assert regressions / trials <= 0.05
    assert result.judge_sd is not None
    assert 0.05 < result.judge_sd < 0.15


def test_the_delta_interval_covers_the_true_delta_at_about_its_nominal_rate() -> None:
    rng = np.random.default_rng(99)
    trials, covered = 200, 0
    true_delta = -0.05
    for _ in range(trials):
        truth = rng.beta(8, 2, size=60)
        base = np.clip(truth + rng.normal(0, 0.05, 60), 0, 1)
        cand = np.clip(truth + true_delta + rng.normal(0, 0.05, 60), 0, 1)
        result = compare_paired(FAITHFULNESS, as_cases(base), as_cases(cand), resamples=500)
        # The clipping shifts the realised delta slightly; use the expected clipped delta.
        assert result.low is not None
        assert result.high is not None
        covered += result.low <= true_delta <= result.high
    assert 0.88 <= covered / trials <= 0.99


def test_required_samples_for_a_rate_gate() -> None:
    plan = required_samples(HALLUCINATION, threshold=0.05, direction="max", margin=0.05)
    # 0 events in n cases: the Wilson upper bound is z²/(n + z²) <= 0.05 from n = 73.
    assert plan.n == 73
    assert required_samples(HALLUCINATION, 0.05, "max", 0.06).n is None


def test_required_samples_for_a_mean_and_a_percentile() -> None:
    mean = required_samples(FAITHFULNESS, threshold=0.85, direction="min", margin=0.05, sd=0.2)
    assert mean.n == 62  # (1.96 × 0.2 / 0.05)² = 61.5
    p95 = required_samples(METRICS["latency_p95_s"], threshold=2.0, direction="max", margin=0.5)
    # The sample maximum bounds the p95 once 0.95^n <= 0.025: n >= ln 0.025 / ln 0.95 = 71.9.
    assert p95.n == 72
