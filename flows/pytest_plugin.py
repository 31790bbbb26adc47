"""A pytest plugin: each contract gate of the changed agents becomes a test item.

    pytest --impactgate [--impactgate-baseline REF] [--impactgate-agent NAME ...]

Off unless ``--impactgate`` is given. The gates are computed once per session by the same
procedure as ``impactgate ci``; a failing or inconclusive gate, or a regression against the
baseline, is a failed test whose message is the verdict with its numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from evals.ci import AgentGate

# Installed with impactgate, this plugin loads in every pytest session of the environment:
# the engine is imported only when --impactgate asks for it.

__all__ = ["GateFailed", "GateItem"]


class GateFailed(Exception):
    """A contract gate did not pass."""


class GateItem(pytest.Item):
    """One agent × metric: its gate on the candidate and its change against the baseline."""

    def __init__(self, *, verdict: AgentGate, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verdict = verdict
        self.metric = metric

    def runtest(self) -> None:
        """Fail with the verdict's numbers when the gate or the comparison says so."""
        from evals.gates import Verdict
        from evals.metrics import Change

        problems = []
        gate = next((g for g in self.verdict.gates if g.metric == self.metric), None)
        if gate is not None and gate.verdict != Verdict.PASS:
            problems.append(f"{self.metric} {gate.threshold}: {gate.verdict}: {gate.reason}")
        delta = next((d for d in self.verdict.deltas if d.metric == self.metric), None)
        if delta is not None and delta.change == Change.REGRESSION:
            worse = ", ".join(delta.worse[:10])
            problems.append(f"{self.metric} regressed: {delta.reason}; worse cases: {worse}")
        if problems:
            raise GateFailed("\n".join(problems))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The verdict, not a traceback."""
        if isinstance(excinfo.value, GateFailed):
            return f"impactgate gate failed for {self.verdict.agent} at {self.verdict.level}:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        """Where the item comes from, for pytest's report."""
        return f"impactgate/{self.verdict.agent}", 0, f"{self.verdict.agent}::{self.metric}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's options."""
    group = parser.getgroup("impactgate", "gate agents on their Agent Impact Contracts")
    group.addoption(
        "--impactgate",
        action="store_true",
        help="add one test per contract gate of the changed agents",
    )
    group.addoption(
        "--impactgate-baseline",
        default=None,
        help="git ref to compare with (default: origin/main, main or HEAD)",
    )
    group.addoption("--impactgate-policies", default="policies", help="folder of contracts")
    group.addoption(
        "--impactgate-results", default="results", help="results root (stored runs are reused)"
    )
    group.addoption(
        "--impactgate-agent",
        action="append",
        default=[],
        help="gate this agent even if it did not change",
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Append one item per agent × gated or compared metric."""
    if not config.getoption("impactgate"):
        return
    from evals.ci import gate_changes
    from evals.errors import UserError

    try:
        _, verdicts = gate_changes(
            config.getoption("impactgate_policies"),
            config.getoption("impactgate_results"),
            config.getoption("impactgate_baseline"),
            config.getoption("impactgate_agent"),
        )
    except UserError as exc:
        raise pytest.UsageError(f"impactgate: {exc}") from None
    for verdict in verdicts:
        metrics = dict.fromkeys(
            [g.metric for g in verdict.gates] + [d.metric for d in verdict.deltas]
        )
        for metric in metrics:
            items.append(
                GateItem.from_parent(
                    session,
                    name=f"impactgate::{verdict.agent}::{metric}",
                    verdict=verdict,
                    metric=metric,
                )
            )
