"""Interval estimates behind every gated number.

All functions are deterministic: the bootstrap seeds itself from the data, so an identical
rerun produces an identical interval and therefore an identical verdict.

Binomial probabilities come from ``scipy.special`` (``bdtr``/``bdtrc``, the functions
``scipy.stats.binom`` evaluates, without the second it takes to import ``scipy.stats``), imported
on first use so that commands that never need a tail start without scipy. The Wilson interval is
its closed form, and the bootstrap is plain numpy, seeded from the data.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

__all__ = [
    "binomial_cdf",
    "binomial_sf",
    "bootstrap_mean_interval",
    "mean_interval",
    "quantile_interval",
    "wilson_interval",
]


def _z(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence`` (1.96 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a binomial proportion.

    Args:
        successes: number of cases with the event.
        n: number of cases; must be positive.
        confidence: two-sided coverage, e.g. 0.95.

    Returns:
        ``(low, high)``, both within ``[0, 1]``.
    """
    if n <= 0:
        raise ValueError("wilson_interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Clamp the rounding noise at the ends: 0 successes has a lower bound of exactly 0.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _seed(*arrays: np.ndarray) -> int:
    """A bootstrap seed from the data itself: identical data, identical resamples."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def bootstrap_mean_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    resamples: int = 4000,
) -> tuple[float, float]:
    """Percentile bootstrap interval for a mean, seeded from the data itself.

    Args:
        values: at least two observations.
        confidence: two-sided coverage.
        resamples: number of bootstrap resamples.

    Returns:
        ``(low, high)``.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        raise ValueError("bootstrap_mean_interval needs at least two values")
    rng = np.random.default_rng(_seed(data))
    means = np.empty(resamples)
    chunk = max(1, min(resamples, 2_000_000 // data.size))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, data.size, size=(stop - start, data.size))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


BOOTSTRAP_MAX_N = 2_000
"""Above this many values a mean's interval is the normal (CLT) one: the percentile bootstrap
and it agree to resampling noise there, and resampling tens of thousands of values 4,000
times would cost seconds."""


def mean_interval(
    n: int, mean: float, std: float, confidence: float = 0.95, values: np.ndarray | None = None
) -> tuple[tuple[float, float] | None, str]:
    """An interval for a mean and the method that gave it.

    The percentile bootstrap over ``values`` when there are at most ``BOOTSTRAP_MAX_N`` of
    them (and they are given); above that the normal interval ``mean ± z·std/√n`` from the
    count, mean and sample standard deviation (what a SQL engine aggregates). ``None`` with
    fewer than two values.
    """
    if n < 2:
        return None, "bootstrap"
    if values is not None and n <= BOOTSTRAP_MAX_N:
        return bootstrap_mean_interval(values, confidence), "bootstrap"
    half = _z(confidence) * std / math.sqrt(n)
    return (mean - half, mean + half), "normal"


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    from scipy.special import bdtr

    return float(bdtr(k, n, p))


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X > k) for X ~ Binomial(n, p), computed directly (no ``1 - cdf`` cancellation)."""
    if k < 0:
        return 1.0
    if k >= n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    from scipy.special import bdtrc

    return float(bdtrc(k, n, p))


def quantile_interval(
    values: Sequence[float] | np.ndarray, q: float, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Distribution-free interval for the ``q``-quantile from order statistics.

    With sorted values ``x(1) <= ... <= x(n)`` the interval is ``[x(l), x(u)]`` where the
    number of values below the true quantile, ``B ~ Binomial(n, q)``, satisfies
    ``P(l <= B <= u - 1) >= confidence``. When ``n`` is too small to bound a side (the
    95th percentile of 40 calls has no finite upper bound at 95%), that side is ``None``:
    the data cannot say, and a gate on that side stays inconclusive.

    Returns:
        ``(low, high)``; either may be ``None`` when unbounded.
    """
    data = np.sort(np.asarray(values, dtype=np.float64))
    n = int(data.size)
    if n == 0:
        raise ValueError("quantile_interval needs at least one value")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    tail = (1.0 - confidence) / 2.0
    from scipy.special import bdtr

    cdf = bdtr(np.arange(n + 1), n, q)  # cdf[j] = P(B <= j)
    # Largest 1-based l with P(B <= l - 1) <= tail; 0 when even l = 1 fails (unbounded below).
    low_index = int(np.searchsorted(cdf, tail, side="right"))
    # Smallest 1-based u with P(B <= u - 1) >= 1 - tail; n + 1 when none (unbounded above).
    # A small tolerance keeps float rounding from turning an exact 0.975 into "unbounded".
    high_index = int(np.searchsorted(cdf, 1.0 - tail - 1e-12, side="left")) + 1
    low = float(data[low_index - 1]) if low_index >= 1 else None
    high = float(data[high_index - 1]) if high_index <= n else None
    return low, high
