"""The litellm client against a real local OpenAI-compatible server: retries, cache, errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from evals.llm import CallCache, LLMCallError, LLMClient, RetryPolicy
from evals.testing import FakeOpenAIServer, Reply

pytestmark = pytest.mark.model

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=5, timeout_s=2)
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", "sk-test-secret-value")


def client(
    server: FakeOpenAIServer, tmp_path: Path | None = None, retry: RetryPolicy = FAST
) -> LLMClient:
    cache = CallCache(tmp_path / "cache.sqlite") if tmp_path else None
    return LLMClient(
        "openai/fake", api_base=server.url, api_key_env="FAKE_LLM_KEY", retry=retry, cache=cache
    )


def test_429_with_retry_after_then_success(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply(status=429, retry_after=0.3), "fine")
    started = time.perf_counter()
    completion = asyncio.run(client(server).complete(MESSAGES))
    assert completion.text == "fine"
    assert completion.attempts == 2
    assert server.calls == 2
    assert time.perf_counter() - started >= 0.3, "Retry-After was honoured"


def test_retry_exhaustion_raises_with_the_reason(server: FakeOpenAIServer) -> None:
    server.enqueue(*[Reply(status=503)] * 3)
    with pytest.raises(LLMCallError, match=r"HTTP 503.*after 3 attempts") as info:
        asyncio.run(client(server).complete(MESSAGES))
    assert info.value.attempts == 3
    assert server.calls == 3


def test_permanent_errors_are_not_retried(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply(status=400))
    with pytest.raises(LLMCallError, match="after 1 attempt"):
        asyncio.run(client(server).complete(MESSAGES))
    assert server.calls == 1


def test_timeout_and_malformed_body_are_retried(server: FakeOpenAIServer) -> None:
    retry = RetryPolicy(attempts=3, base_delay_s=0.01, timeout_s=0.5)
    server.enqueue(Reply(content="late", delay_s=1.5), Reply(raw="{not json"), "ok")
    completion = asyncio.run(client(server, retry=retry).complete(MESSAGES))
    assert completion.text == "ok"
    assert completion.attempts == 3


def test_cache_makes_a_rerun_free_and_never_stores_the_key(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    first = asyncio.run(client(server, tmp_path).complete(MESSAGES))
    again = asyncio.run(client(server, tmp_path).complete(MESSAGES))
    assert server.calls == 1
    assert (first.cached, again.cached) == (False, True)
    assert again.text == first.text
    assert b"sk-test-secret-value" not in (tmp_path / "cache.sqlite").read_bytes()
    assert server.requests[0].get("model") == "fake"


def test_a_missing_key_variable_is_a_clear_error(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_LLM_KEY")
    with pytest.raises(LLMCallError, match="FAKE_LLM_KEY"):
        asyncio.run(client(server).complete(MESSAGES))
    assert server.calls == 0
