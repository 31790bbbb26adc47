"""Model calls through litellm: one retry policy, a persistent cache, honest errors."""

from evals.llm._cache import CallCache, request_key
from evals.llm._client import Completion, LLMCallError, LLMClient, RetryPolicy

__all__ = ["CallCache", "Completion", "LLMCallError", "LLMClient", "RetryPolicy", "request_key"]
