"""What every target shares: the version being evaluated and the output of one call."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from evals.dataset import Case, Usage
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


@dataclass(frozen=True)
class Output:
    """What the agent produced for one case, timed; or why it produced nothing."""

    case_id: str
    text: str | None
    contexts: tuple[str, ...] | None = None
    """Passages the agent retrieved for this call; ``None`` means the case's own."""
    latency_s: float | None = None
    """Seconds the call that produced the answer took (the attempt that succeeded)."""
    usage: Usage | None = None
    cost_usd: float | None = None
    model: str | None = None
    error: str | None = None
    """Why there is no output (after any retries); counts against the error budget."""
    attempts: int | None = None
    """Requests it took (retries included); ``None`` for targets that make no requests."""
    usage_counted: bool = False
    """The provider reported no token usage, so ``usage`` was counted locally."""
    tool_calls: tuple[dict[str, Any], ...] | None = None
    """Tool calls the agent made, as it reported them."""
    cached: bool = False
    """Served from the output cache: produced by an earlier run of this exact version on this
    exact case, with that run's latency, usage and cost."""

    def contexts_for(self, case: Case) -> list[str]:
        """The passages this answer should be grounded in."""
        return list(self.contexts) if self.contexts is not None else list(case.contexts)

    def to_record(self) -> dict[str, Any]:
        """JSON-able form, for the output cache and the run journal."""
        record = asdict(self)
        record["usage"] = self.usage.model_dump() if self.usage is not None else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Output:
        """Rebuild an output written by :meth:`to_record`."""
        data = dict(record)
        if data.get("usage") is not None:
            data["usage"] = Usage.model_validate(data["usage"])
        for name in ("contexts", "tool_calls"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)


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
