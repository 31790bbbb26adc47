"""What every target shares: the version being evaluated and the output of one call."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evals.dataset import Case
from evals.store import Output
from evals.targets._secrets import Redactor

__all__ = [
    "AgentVersion",
    "OnOutput",
    "Output",
    "Progress",
    "Target",
    "case_fingerprint",
    "config_hash",
]

Progress = Callable[[int], None]
"""Called with the number of cases finished so far."""

OnOutput = Callable[["Output"], None]
"""Called with each output as soon as it exists (before ``Progress``), to journal or cache it."""

# A recorded answer is not something the agent is asked: changing it must not invalidate
# outputs produced for the case.
_RECORDING_FIELDS = {"output", "usage", "latency_s", "cost_usd", "model"}


def config_hash(config: Any) -> str:
    """SHA-256 of a JSON-serialisable config, independent of key order."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def case_fingerprint(case: Case) -> str:
    """SHA-256 of everything about a case an agent can see (its recorded answer excluded)."""
    return config_hash(case.model_dump(mode="json", exclude=_RECORDING_FIELDS))


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


class Target(ABC):
    """How outputs are produced for cases."""

    kind: str
    cacheable: bool = False
    """Whether outputs of one version may be reused across runs (the output cache). Only true
    when the version hash covers everything that shapes an output."""

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

    def check(self, cases: Sequence[Case]) -> None:
        """Validate the configuration against the cases without calling anything.

        Raises:
            UserError: e.g. a prompt template uses a variable that does not exist.
        """
        return None  # replay and Python targets have nothing to check beyond construction

    def preflight(self) -> None:
        """Check what a run needs from the environment (secrets) before the first call.

        Raises:
            UserError: e.g. the environment variable holding the API key is not set.
        """
        return None  # targets without secrets need nothing from the environment

    def redactor(self) -> Redactor:
        """Replaces this target's secrets (keys, header values) in anything recorded."""
        return Redactor()

    @abstractmethod
    def generate(
        self,
        cases: Sequence[Case],
        progress: Progress | None = None,
        on_output: OnOutput | None = None,
    ) -> list[Output]:
        """Produce one output per case, in order.

        A failing call is an ``Output`` with ``error`` set, never an exception. ``on_output``
        sees each output as it is produced (in completion order), before ``progress``.
        """
