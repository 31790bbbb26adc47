"""Model calls through litellm: one retry policy, a persistent cache, honest errors."""

from evals.llm._cache import CallCache, request_key
from evals.llm._client import (
    Completion,
    LLMCallError,
    LLMClient,
    classify_litellm_error,
)
from evals.llm._retry import (
    CallError,
    Failure,
    RateLimiter,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

__all__ = [
    "CallCache",
    "CallError",
    "Completion",
    "Failure",
    "LLMCallError",
    "LLMClient",
    "RateLimiter",
    "RetryPolicy",
    "call_with_retries",
    "classify_litellm_error",
    "parse_retry_after",
    "request_key",
]
