"""Calling models through litellm with one retry policy, a cache, and honest errors.

All retrying happens here: litellm's and the OpenAI SDK's own retries are switched off
(``num_retries=0``, ``max_retries=0``) so the number of attempts is the one configured.
Transient failures (429, 5xx, timeouts, connection errors, malformed replies) are retried
with exponential backoff and jitter, honouring ``Retry-After``; anything else fails at once.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from evals._env import apply_offline_defaults
from evals.llm._cache import CallCache, request_key
from evals.llm._retry import (
    CallError,
    Failure,
    RateLimiter,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

__all__ = ["Completion", "LLMCallError", "LLMClient", "RetryPolicy", "classify_litellm_error"]


class LLMCallError(CallError):
    """A model call failed for good (after retries, or at once for a permanent error)."""


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
    return parse_retry_after(str(value)) if value is not None else None


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


def classify_litellm_error(exc: Exception) -> Failure:
    """Whether a litellm exception is worth another attempt, and why it happened."""
    return Failure(_transient(exc), _describe(exc), _retry_after(exc))


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
        limiter: RateLimiter | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.params = dict(params or {})
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.limiter = limiter
        """Paces attempts to a requests-per-minute budget (one event loop only)."""
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

    async def complete(
        self, messages: list[dict[str, Any]], *, cache_tag: str | None = None, **params: Any
    ) -> Completion:
        """Send one chat request (or answer it from the cache).

        ``latency_s`` is the time of the attempt that succeeded; ``attempts`` counts them all.

        Raises:
            LLMCallError: after the last attempt, or at once for a permanent error.
        """
        request = self._request(messages, params)
        # A tag tells apart deliberate repeats of the same request (measuring a judge's noise).
        key = (
            request_key({**request, "_cache_tag": cache_tag} if cache_tag else request)
            if self.cache is not None
            else ""
        )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Completion(**{**hit, "cached": True, "attempts": 0, "latency_s": 0.0})
        apply_offline_defaults()
        import litellm

        litellm.suppress_debug_info = True
        secret = self._secret()
        latency = 0.0

        async def send() -> Any:
            nonlocal latency
            self.calls += 1
            start = time.perf_counter()
            response = await litellm.acompletion(
                **request,
                **secret,
                num_retries=0,
                max_retries=0,
                timeout=self.retry.timeout_s,
            )
            latency = time.perf_counter() - start
            return response

        try:
            response, attempts = await call_with_retries(
                send, self.retry, classify_litellm_error, limiter=self.limiter
            )
        except CallError as exc:
            raise LLMCallError(
                f"{self.model}: {exc}", exc.attempts, exc.transient
            ) from exc.__cause__
        raw = response.model_dump()
        usage = raw.get("usage") or {}
        text = raw["choices"][0]["message"].get("content") or ""
        completion = Completion(
            text=text,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            model=raw.get("model") or self.model,
            cached=False,
            attempts=attempts,
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
