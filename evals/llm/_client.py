"""Calling models through litellm with one retry policy, a cache, and honest errors.

All retrying happens here: litellm's and the OpenAI SDK's own retries are switched off
(``num_retries=0``, ``max_retries=0``) so the number of attempts is the one configured.
Transient failures (429, 5xx, timeouts, connection errors, malformed replies) are retried
with exponential backoff and jitter, honouring ``Retry-After``; anything else fails at once.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from evals._env import apply_offline_defaults
from evals.llm._cache import CallCache, request_key

__all__ = ["Completion", "LLMCallError", "LLMClient", "RetryPolicy"]


class LLMCallError(RuntimeError):
    """A model call failed for good (after retries, or at once for a permanent error)."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


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
class Completion:
    """A model reply."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str
    cached: bool
    attempts: int
    latency_s: float
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None) or getattr(
        getattr(exc, "response", None), "headers", None
    )
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _transient(exc: BaseException) -> bool:
    from litellm import exceptions as errors

    transient = (
        errors.RateLimitError,
        errors.InternalServerError,
        errors.ServiceUnavailableError,
        errors.APIConnectionError,
        errors.Timeout,
        errors.BadGatewayError,
    )
    if isinstance(exc, (*transient, asyncio.TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    message = str(exc).splitlines()[0] if str(exc) else ""
    kind = type(exc).__name__
    return f"{kind} (HTTP {status}): {message}" if status else f"{kind}: {message}"


class LLMClient:
    """One model, called through litellm, with the retry policy and an optional cache."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key_env: str | None = None,
        params: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        cache: CallCache | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.params = dict(params or {})
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.calls = 0
        """Requests actually sent (cache hits excluded)."""

    def _request(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            **self.params,
            **params,
        }
        if self.api_base:
            request["api_base"] = self.api_base
        return request

    def _secret(self) -> dict[str, Any]:
        if not self.api_key_env:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMCallError(
                f"environment variable {self.api_key_env} (the API key) is not set", 0
            )
        return {"api_key": key}

    async def complete(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """Send one chat request (or answer it from the cache).

        Raises:
            LLMCallError: after the last attempt, or at once for a permanent error.
        """
        request = self._request(messages, params)
        key = request_key(request)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Completion(**{**hit, "cached": True, "attempts": 0, "latency_s": 0.0})
        apply_offline_defaults()
        import litellm

        litellm.suppress_debug_info = True
        secret = self._secret()
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            start = time.perf_counter()
            self.calls += 1
            try:
                response = await litellm.acompletion(
                    **request,
                    **secret,
                    num_retries=0,
                    max_retries=0,
                    timeout=self.retry.timeout_s,
                )
            except Exception as exc:
                last = _describe(exc)
                if not _transient(exc) or attempt == self.retry.attempts:
                    raise LLMCallError(
                        f"{self.model}: {last} (after {attempt} attempt{'s' if attempt > 1 else ''})",
                        attempt,
                    ) from exc
                await asyncio.sleep(self.retry.delay(attempt, _retry_after(exc)))
                continue
            latency = time.perf_counter() - start
            raw = response.model_dump()
            usage = raw.get("usage") or {}
            text = raw["choices"][0]["message"].get("content") or ""
            completion = Completion(
                text=text,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                model=raw.get("model") or self.model,
                cached=False,
                attempts=attempt,
                latency_s=latency,
                raw=raw,
            )
            if self.cache is not None:
                stored = {
                    k: v
                    for k, v in completion.__dict__.items()
                    if k not in {"cached", "attempts", "latency_s"}
                }
                self.cache.put(key, stored)
            return completion
        raise LLMCallError(f"{self.model}: {last}", self.retry.attempts)  # pragma: no cover
