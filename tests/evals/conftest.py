"""Fixtures the engine's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evals.testing import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A local OpenAI-compatible server on 127.0.0.1 (a module may define its own)."""
    with FakeOpenAIServer() as running:
        yield running
