"""Test helpers that ship with the engine: a local OpenAI-compatible server."""

from evals.testing._openai_server import FakeOpenAIServer, Reply

__all__ = ["FakeOpenAIServer", "Reply"]
