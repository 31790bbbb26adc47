"""Anytime-valid monitoring, proved by seeded simulation over a year of nights.

An unchanged agent that exactly meets its gate must be escalated (at any night of the year)
in at most ``alpha`` of simulated years — where a nightly 95% gate escalates it in nearly
every year — and a real breach of the configured size must be caught within a few nights.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals.metrics import (
    mean_log_evalue,
    mixture_log_evidence,
    monitor,
    rate_log_evalue,
    wilson_interval,
)

NIGHTS, YEARS, PER_NIGHT, ALPHA = 365, 400, 50, 0.05
LINE = math.log(1 / ALPHA)


def _rate_log_e(events: np.ndarray, bound: float, breach: float) -> np.ndarray:
    return events * math.log(breach / bound) + (PER_NIGHT - events) * (
        math.log1p(-breach) - math.log1p(-bound)
    )


def test_the_vectorised_rate_evalue_is_the_scalar_one() -> None:
    events = np.array([[0, 7, 12, 50]])
    expected = [rate_log_evalue(int(k), PER_NIGHT, 0.15, 0.25) for k in events[0]]
    assert _rate_log_e(events, 0.15, 0.25)[0].tolist() == pytest.approx(expected)


def test_an_unchanged_rate_at_its_bound_is_escalated_in_at_most_alpha_of_years() -> None:
    rng = np.random.default_rng(20261203)
    events = rng.binomial(PER_NIGHT, 0.15, size=(YEARS, NIGHTS))  # exactly at "≤ 0.15"
    evidence = mixture_log_evidence(_rate_log_e(events, 0.15, 0.25), NIGHTS)
    false_years = float((evidence.max(axis=1) >= LINE).mean())
    # Binomial noise over 400 years: 3 standard errors above alpha.
    assert false_years <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / YEARS), false_years
    # The same agent under a nightly gate ("fail" when the night's rate is over the bound,
    # or when even a 95% interval's lower end is) is escalated in nearly every year.
    nightly = (events / PER_NIGHT > 0.15).any(axis=1).mean()
    lower = np.array(
        [[wilson_interval(int(k), PER_NIGHT, 0.9)[0] for k in row] for row in events[:40]]
    )
    strict = (lower > 0.15).any(axis=1).mean()
    assert nightly > 0.99
    assert strict > 0.8


def test_a_rate_that_breaches_is_caught_within_days() -> None:
    rng = np.random.default_rng(7)
    change = 200
    rates = np.where(np.arange(NIGHTS) < change, 0.10, 0.25)
    events = rng.binomial(PER_NIGHT, rates, size=(YEARS, NIGHTS))
    evidence = mixture_log_evidence(_rate_log_e(events, 0.15, 0.25), NIGHTS)
    crossed = evidence >= LINE
    assert not crossed[:, :change].any(axis=1).mean() > ALPHA
    after = crossed[:, change:]
    delay = np.where(after.any(axis=1), after.argmax(axis=1) + 1, NIGHTS)
    assert np.median(delay) <= 5, np.median(delay)
    assert np.quantile(delay, 0.95) <= 12, np.quantile(delay, 0.95)


def test_an_unchanged_mean_at_its_bound_is_escalated_in_at_most_alpha_of_years() -> None:
    rng = np.random.default_rng(11)
    years = 120
    values = rng.beta(8.5, 1.5, size=(years, NIGHTS, PER_NIGHT))  # mean 0.85: "≥ 0.85" exactly
    log_e = np.array(
        [[mean_log_evalue(night, 0.85, "min", 0.10) for night in year] for year in values]
    )
    evidence = mixture_log_evidence(log_e, NIGHTS)
    false_years = float((evidence.max(axis=1) >= LINE).mean())
    assert false_years <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / years), false_years


def test_a_mean_that_drops_is_caught_within_days() -> None:
    rng = np.random.default_rng(12)
    years, change = 120, 100
    good = rng.beta(9.0, 1.0, size=(years, change, PER_NIGHT))  # mean 0.90
    bad = rng.beta(7.5, 2.5, size=(years, 30, PER_NIGHT))  # mean 0.75
    values = np.concatenate([good, bad], axis=1)
    log_e = np.array(
        [[mean_log_evalue(night, 0.85, "min", 0.10) for night in year] for year in values]
    )
    crossed = mixture_log_evidence(log_e, NIGHTS) >= LINE
    assert crossed[:, :change].any(axis=1).mean() <= ALPHA
    after = crossed[:, change:]
    delay = np.where(after.any(axis=1), after.argmax(axis=1) + 1, 30)
    assert np.median(delay) <= 5, np.median(delay)
    assert np.quantile(delay, 0.95) <= 10, np.quantile(delay, 0.95)


def test_monitor_names_the_night_the_breach_started() -> None:
    quiet = [rate_log_evalue(5, PER_NIGHT, 0.15, 0.25)] * 60
    breach = [rate_log_evalue(14, PER_NIGHT, 0.15, 0.25)] * 6
    result = monitor([*quiet, *breach], ALPHA, NIGHTS)
    assert result.alarm
    assert result.since == 60
    assert "nights 60–65" in result.reason("hallucination_rate")
    assert not monitor(quiet, ALPHA, NIGHTS).alarm
    assert monitor([], ALPHA, NIGHTS).nights == 0
