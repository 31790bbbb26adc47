"""Monitoring that does not cry wolf: anytime-valid evidence over nights of fresh samples.

A gate checked every night at 95% confidence on a fresh production sample raises a false
alarm on about one night in twenty for an agent that never changed. Monitoring instead
accumulates evidence across nights as an *e-process*: a nonnegative supermartingale under
"the agent meets its threshold", so by Ville's inequality the chance that it *ever* reaches
``1 / alpha`` — over the whole monitoring period, however many nights are looked at — is at
most ``alpha``.

Each night contributes an e-value: a likelihood ratio against a breach of the configured size
(rates: events among the night's cases) or a bet against the threshold (means of values in
[0, 1]). A breach can start on any night, so the e-process is a mixture, with equal weight
``1 / horizon``, of the products of e-values started on each night (a Shiryaev–Roberts-style
mixture over change points). Before a change the mixture stays small; after one, the product
started near the change grows at the rate the breach's size allows. See
docs/design/monitoring.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "MonitorResult",
    "mean_log_evalue",
    "mixture_log_evidence",
    "monitor",
    "rate_log_evalue",
]

Direction = Literal["min", "max"]


def rate_log_evalue(events: int, n: int, bound: float, breach: float) -> float:
    """Log e-value of one night's rate against ``rate <= bound`` (a ``max`` gate).

    The likelihood ratio of ``n`` Bernoulli draws with ``events`` events under a breached rate
    ``breach > bound`` against the bound. Its expectation is at most 1 whenever the true rate
    is at most ``bound``, so it is a valid e-value for the whole null.

    Raises:
        ValueError: the rates are not ordered ``0 <= bound < breach <= 1``.
    """
    if not 0.0 <= bound < breach <= 1.0:
        raise ValueError(f"need 0 <= bound < breach <= 1, got bound {bound}, breach {breach}")
    if not 0 <= events <= n:
        raise ValueError(f"events must be in [0, n], got {events} of {n}")
    if bound == 0.0:
        return math.inf if events else n * math.log1p(-breach)
    if breach == 1.0:
        return -math.inf if events < n else n * math.log(1 / bound)
    return events * math.log(breach / bound) + (n - events) * (
        math.log1p(-breach) - math.log1p(-bound)
    )


def mean_log_evalue(
    values: Sequence[float], bound: float, direction: Direction, breach: float
) -> float:
    """Log e-value of one night's values in [0, 1] against the mean meeting ``bound``.

    A bet with a fixed stake: for a ``min`` gate (``mean >= bound`` is fine) each value ``x``
    multiplies the wealth by ``1 + lam * (bound - x)``, which has expectation at most 1 when
    the mean is at least ``bound``; ``max`` gates bet the other way. The stake ``lam`` is the
    growth-optimal one for a breach of size ``breach`` (absolute) under a Bernoulli-like
    worst case, clipped so the wealth stays positive.

    Raises:
        ValueError: a value is outside [0, 1], or the breach is not positive.
    """
    if breach <= 0:
        raise ValueError(f"breach must be positive, got {breach}")
    data = np.asarray(values, dtype=float)
    if data.size and (data.min() < 0.0 or data.max() > 1.0):
        raise ValueError("values must lie in [0, 1]")
    sign = 1.0 if direction == "min" else -1.0
    # Largest stake that keeps 1 + lam * sign * (bound - x) > 0 for every x in [0, 1].
    room = (1.0 - bound) if sign < 0 else bound
    limit = 0.5 / max(room, 1e-9)
    spread = max(bound * (1.0 - bound), 1e-3)
    lam = min(limit, breach / spread)
    steps = 1.0 + lam * sign * (bound - data)
    return float(np.log(steps).sum())


@dataclass(frozen=True)
class MonitorResult:
    """What the evidence of every night so far says about one gate."""

    alarm: bool
    """The evidence of a breach reached ``1 / alpha``: escalate."""
    log_evidence: float
    """Log of the e-process after the last night (``log(1 / alpha)`` is the alarm line)."""
    nights: int
    since: int | None
    """The night (0-based) the strongest evidence starts from: the likely change point."""
    alpha: float
    horizon: int

    @property
    def evidence(self) -> float:
        """The e-process's value (capped for display)."""
        return math.exp(min(self.log_evidence, 700.0))

    def reason(self, metric: str) -> str:
        """One line for a person."""
        line = f"log e {self.log_evidence:.2f} vs alarm at {math.log(1 / self.alpha):.2f}"
        if self.alarm:
            return (
                f"{metric}: a breach is evident across nights {self.since}–{self.nights - 1} "
                f"({line}); the chance of a false alarm over {self.horizon} nights is at most "
                f"{self.alpha:.0%}"
            )
        return f"{metric}: no evident breach after {self.nights} night(s) ({line})"


def mixture_log_evidence(log_evalues: np.ndarray, horizon: int) -> np.ndarray:
    """The e-process after each night, in log, for a matrix of nights (one row per series).

    ``S_t = (S_{t-1} + 1) * e_t`` sums the products of e-values started on every night up to
    ``t``; with ``1 / horizon`` weight on each change point and the points not reached yet
    held at 1, the mixture is ``(S_t + horizon - t - 1) / horizon``. Change points past the
    horizon carry no weight (a new monitoring period starts there).
    """
    rows, nights = log_evalues.shape
    log_sum = np.full(rows, -np.inf)
    out = np.empty((rows, nights))
    for t in range(nights):
        # A new component starts each night within the horizon (it adds 1 before the night).
        started = np.logaddexp(log_sum, 0.0) if t < horizon else log_sum
        log_sum = started + log_evalues[:, t]
        rest = horizon - t - 1
        held = np.logaddexp(log_sum, math.log(rest)) if rest > 0 else log_sum
        out[:, t] = held - math.log(horizon)
    return out


def monitor(log_evalues: Sequence[float], alpha: float, horizon: int) -> MonitorResult:
    """Combine nightly log e-values into one anytime-valid alarm.

    Args:
        log_evalues: one per night, oldest first.
        alpha: the chance of any false alarm over ``horizon`` nights that is tolerated.
        horizon: nights the guarantee covers: a breach may start on any of them (each such
            change point weighs ``1 / horizon``). Monitoring past it starts a new period.

    Returns:
        The alarm, the evidence and the night its strongest part starts on.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if horizon < 1:
        raise ValueError(f"horizon must be positive, got {horizon}")
    steps = np.asarray(log_evalues, dtype=float)
    nights = int(steps.size)
    if nights == 0:
        return MonitorResult(False, -math.inf, 0, None, alpha, horizon)
    log_evidence = float(mixture_log_evidence(steps[None, :], horizon)[0, -1])
    # The strongest component: the product of e-values since its night (suffix sums in log).
    suffix = np.cumsum(steps[::-1])[::-1][:horizon]
    since = int(np.argmax(suffix))
    return MonitorResult(
        log_evidence >= math.log(1.0 / alpha), log_evidence, nights, since, alpha, horizon
    )
