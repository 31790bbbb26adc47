"""The one retry policy every outbound call goes through: model calls and agent endpoints.

A call is attempted up to ``RetryPolicy.attempts`` times. Each attempt is bounded by
``timeout_s``; transient failures (429, 5xx, timeouts, dropped connections, malformed replies)
are retried after an exponential backoff with jitter, or after the server's ``Retry-After``
when it sends one; anything else fails at once. The caller classifies its own exceptions
(litellm's, httpx's) into a :class:`Failure`; the loop, the waits and the wording of the final
error live here only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

__all__ = [
    "CallError",
    "Failure",
    "RateLimiter",
    "RetryPolicy",
    "call_with_retries",
    "parse_retry_after",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try."""

    attempts: int = 4
    """Total attempts, the first included."""
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.25
    """Random extra delay, as a share of the backoff."""
    timeout_s: float = 60.0
    """Per-attempt timeout."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        backoff += backoff * self.jitter * random.random()
        if retry_after is not None:
            return float(min(self.max_delay_s, max(retry_after, 0.0)))
        return float(backoff)


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt, as the caller classified it."""

    transient: bool
    """Worth another attempt (429, 5xx, timeout, dropped connection, malformed reply)."""
    reason: str
    """One line a person can read: ``RateLimitError (HTTP 429): slow down``."""
    retry_after: float | None = None
    """Seconds the server asked us to wait, when it said."""


class CallError(RuntimeError):
    """A call failed for good: after the last attempt, or at once for a permanent error."""

    def __init__(self, message: str, attempts: int, transient: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.transient = transient
        """The last attempt failed for a reason worth trying again later (429, 5xx, timeout)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RateLimiter:
    """Spaces request starts evenly: at most ``per_minute`` a minute, no bursts.

    Every attempt takes a slot, retries included, because that is what a provider counts.
    Only for use inside one event loop (slots are claimed without awaiting in between).
    """

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval_s = 60.0 / per_minute
        self._next = 0.0

    async def wait(self) -> None:
        """Return when the next request may start."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval_s
        if slot > now:
            await asyncio.sleep(slot - now)


def _attempts(n: int) -> str:
    return f"after {n} attempt{'s' if n != 1 else ''}"


async def call_with_retries(
    send: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    classify: Callable[[Exception], Failure],
    *,
    limiter: RateLimiter | None = None,
) -> tuple[T, int]:
    """Call ``send`` until it succeeds, a permanent failure occurs, or attempts run out.

    Args:
        send: one attempt; raises on failure.
        policy: attempts, backoff and the per-attempt timeout.
        classify: turns an exception of ``send`` into a :class:`Failure`.
        limiter: paces attempts to a requests-per-minute budget.

    Returns:
        ``send``'s result and the number of attempts it took.

    Raises:
        CallError: ``"<reason> (after N attempts)"``, chained to the last exception.
    """
    for attempt in range(1, policy.attempts + 1):
        if limiter is not None:
            await limiter.wait()
        cause: Exception
        try:
            # Our own bound as well as the client's: some clients do not time out a stalled
            # body read, and an attempt must never hang a run.
            async with asyncio.timeout(policy.timeout_s):
                return await send(), attempt
        except TimeoutError as exc:
            failure, cause = Failure(True, f"timed out after {policy.timeout_s:g} s"), exc
        except Exception as exc:
            failure, cause = classify(exc), exc
        if not failure.transient or attempt == policy.attempts:
            raise CallError(
                f"{failure.reason} ({_attempts(attempt)})", attempt, failure.transient
            ) from cause
        await asyncio.sleep(policy.delay(attempt, failure.retry_after))
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
