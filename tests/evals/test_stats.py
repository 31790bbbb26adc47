"""Interval maths against known values and by simulation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evals.metrics import (
    METRICS,
    aggregate,
    binomial_cdf,
    binomial_sf,
    bootstrap_mean_interval,
    mcnemar_worse_p,
    quantile_interval,
    wilson_interval,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("successes", "n", "confidence", "expected"),
    [
        # Reference values from the closed form (Wilson 1927), as tabulated in Newcombe (1998).
        (5, 10, 0.95, (0.2366, 0.7634)),
        (0, 10, 0.95, (0.0, 0.2775)),
        (10, 10, 0.95, (0.7225, 1.0)),
        (81, 263, 0.95, (0.2553, 0.3662)),
        (1, 29, 0.95, (0.0061, 0.1718)),
        (0, 48, 0.95, (0.0, 0.0741)),
    ],
)
def test_wilson_matches_known_values(
    successes: int, n: int, confidence: float, expected: tuple[float, float]
) -> None:
    low, high = wilson_interval(successes, n, confidence)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="n > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match=r"\[0, n\]"):
        wilson_interval(11, 10)


def test_wilson_covers_the_true_rate_at_about_its_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    p, n, trials = 0.1, 60, 4000
    hits = rng.binomial(n, p, size=trials)
    covered = sum(lo <= p <= hi for lo, hi in (wilson_interval(int(k), n) for k in hits))
    assert 0.93 <= covered / trials <= 0.975


def test_binomial_cdf_exact_values() -> None:
    assert binomial_cdf(3, 10, 0.5) == pytest.approx(176 / 1024)
    assert binomial_cdf(0, 5, 0.2) == pytest.approx(0.8**5)
    assert binomial_cdf(-1, 5, 0.2) == 0.0
    assert binomial_cdf(5, 5, 0.2) == 1.0


def test_binomial_tails_are_exact_far_into_the_tail() -> None:
    assert binomial_sf(2, 10, 0.5) == pytest.approx(1 - 56 / 1024)
    # P(X > 99) for 100 fair coins is 0.5**100; 1 - P(X <= 99) would round it to 0.
    assert binomial_sf(99, 100, 0.5) == pytest.approx(0.5**100, rel=1e-9)
    assert binomial_sf(-1, 5, 0.2) == 1.0
    assert binomial_sf(5, 5, 0.2) == 0.0
    for k, n, p in [(0, 1, 0.5), (3, 10, 0.5), (17, 40, 0.3), (95, 100, 0.95)]:
        assert binomial_cdf(k, n, p) + binomial_sf(k, n, p) == pytest.approx(1.0)


def test_mcnemar_keeps_a_tiny_p_value_instead_of_rounding_it_to_zero() -> None:
    worse = np.ones(60, dtype=bool)
    assert mcnemar_worse_p(~worse, worse) == pytest.approx(0.5**60, rel=1e-9)


@pytest.mark.parametrize(
    ("n", "confidence", "expected"),
    [
        # Order-statistic intervals for the median, as tabulated (Conover, Practical
        # Nonparametric Statistics, table A3): the r-th to the (n + 1 - r)-th value.
        (10, 0.95, (2.0, 9.0)),
        (20, 0.95, (6.0, 15.0)),
        (30, 0.95, (10.0, 21.0)),
        (50, 0.95, (18.0, 33.0)),
        (100, 0.95, (40.0, 61.0)),
        (20, 0.99, (4.0, 17.0)),
    ],
)
def test_quantile_interval_matches_order_statistic_tables(
    n: int, confidence: float, expected: tuple[float, float]
) -> None:
    values = np.arange(1, n + 1, dtype=float)
    assert quantile_interval(values, 0.5, confidence) == expected


def test_quantile_interval_is_unbounded_when_the_data_cannot_bound_it() -> None:
    low, high = quantile_interval(np.arange(1, 41, dtype=float), 0.95, 0.95)
    assert low is not None
    assert high is None


def test_scipy_is_imported_only_when_a_binomial_tail_is_needed() -> None:
    # A fresh process: scipy costs a fraction of a second to import, which commands that
    # never need a tail (`impactgate --version`, rate and mean gates) should not pay.
    code = (
        "import sys, evals.metrics as m\n"
        "m.wilson_interval(3, 10); m.bootstrap_mean_interval([0.1, 0.5, 0.9])\n"
        "assert 'scipy' not in sys.modules, 'scipy imported too early'\n"
        "m.quantile_interval([1.0, 2.0, 3.0], 0.5)\n"
        "assert 'scipy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_bootstrap_is_deterministic_and_brackets_the_mean() -> None:
    values = [0.2, 0.9, 0.4, 0.7, 1.0, 0.0, 0.6, 0.8]
    first = bootstrap_mean_interval(values)
    assert first == bootstrap_mean_interval(list(values)), "identical reruns, identical interval"
    assert first[0] < float(np.mean(values)) < first[1]


def test_bootstrap_covers_the_true_mean_at_roughly_nominal_rate() -> None:
    rng = np.random.default_rng(11)
    trials, covered = 300, 0
    for _ in range(trials):
        sample = rng.beta(2, 5, size=50)
        low, high = bootstrap_mean_interval(sample, resamples=1000)
        covered += low <= 2 / 7 <= high
    # The percentile bootstrap undercovers slightly at n = 50; it must still be close.
    assert 0.90 <= covered / trials <= 0.98


def test_aggregate_is_defined_on_empty_and_all_error_input() -> None:
    empty = aggregate(METRICS["hallucination_rate"], [], 0.95)
    assert empty.value is None
    assert "no data" in empty.note
    errored = aggregate(METRICS["faithfulness"], [None, None], 0.95)
    assert errored.value is None
    assert errored.n_errors == 2
    assert "errored" in errored.note


def test_aggregate_rate_counts_events_and_excludes_errors() -> None:
    metric = aggregate(METRICS["policy_violation_rate"], [1.0, 0.0, None, 0.0, 2.0], 0.95)
    assert metric.value == pytest.approx(0.5)
    assert metric.n == 4
    assert metric.n_errors == 1
    assert (metric.low, metric.high) == pytest.approx(wilson_interval(2, 4))


def test_error_rate_is_counted_not_estimated() -> None:
    metric = aggregate(METRICS["error_rate"], [1.0, 0.0, 0.0, 0.0], 0.95)
    assert metric.value == metric.low == metric.high == pytest.approx(0.25)
    assert metric.method == "count"
