"""What every target shares: the version being evaluated and the output of one call."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evals.dataset import Case, Usage

__all__ = ["AgentVersion", "Output", "Progress", "Target", "config_hash"]

Progress = Callable[[int], None]
"""Called with the number of cases finished so far."""


def config_hash(config: Any) -> str:
    """SHA-256 of a JSON-serialisable config, independent of key order."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AgentVersion:
    """What is evaluated: an agent and a content hash of its target's config."""

    agent: str
    label: str
    """What people and the ledger call it: the recorded version, or the hash prefix."""
    hash: str
    """SHA-256 over everything that makes this version behave as it does."""

    def __str__(self) -> str:
        return self.label if self.hash.startswith(self.label) else f"{self.label} ({self.hash[:8]})"


@dataclass(frozen=True)
class Output:
    """What the agent produced for one case, timed; or why it produced nothing."""

    case_id: str
    text: str | None
    contexts: tuple[str, ...] | None = None
    """Passages the agent retrieved for this call; ``None`` means the case's own."""
    latency_s: float | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    model: str | None = None
    error: str | None = None
    """Why there is no output (after any retries); counts against the error budget."""

    def contexts_for(self, case: Case) -> list[str]:
        """The passages this answer should be grounded in."""
        return list(self.contexts) if self.contexts is not None else list(case.contexts)


class Target(ABC):
    """How outputs are produced for cases."""

    kind: str

    @abstractmethod
    def version(self) -> AgentVersion:
        """The version this target produces."""

    @abstractmethod
    def available_versions(self) -> list[str]:
        """Labels of the versions this target can produce."""

    @abstractmethod
    def at_version(self, label: str) -> Target:
        """The same target producing another available version.

        Raises:
            UserError: the version is not available.
        """

    @abstractmethod
    def generate(self, cases: Sequence[Case], progress: Progress | None = None) -> list[Output]:
        """Produce one output per case, in order.

        A failing call is an ``Output`` with ``error`` set, never an exception.
        """
