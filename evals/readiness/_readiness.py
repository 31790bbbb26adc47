"""What is known about an agent now, and the one answer to "can it be trusted with more?".

:class:`AgentState` gathers an agent's contract, its ledger entry, its committed runs and its
incidents (from the ledger, the one owner of incidents). :func:`readiness` answers from it;
``impactgate status``, the run summary and the report all show this answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from evals.contract import LEVELS, Contract, Level, level_rank
from evals.gates import GateResult, evaluate_gates
from evals.metrics import PRODUCTION_METRICS, fmt_time
from evals.runs import labelled_gates
from evals.store import Incident, Ledger, LedgerEntry, ResultsStore, RunRecord

__all__ = [
    "MONITORING_TRIGGERS",
    "AgentState",
    "Readiness",
    "incident_line",
    "incident_title",
    "load_state",
    "rank",
    "readiness",
]

MONITORING_TRIGGERS = frozenset({"nightly", "manual", "promotion"})
"""Runs of the deployed version. ``ci`` runs evaluate a candidate; they stay off the trends."""


def rank(level: str | None) -> int:
    """Position on the ladder; unknown or missing levels rank below ``draft``."""
    return level_rank(level) if level in LEVELS else -1


def incident_title(incident: Incident) -> str:
    """``critical incident #3 since 2026-11-28 01:05 UTC (2 runs)``."""
    runs = f", {incident.runs} runs" if incident.runs > 1 else ""
    return f"{incident.severity} incident #{incident.id} since {fmt_time(incident.opened_at)}{runs}"


def incident_line(incident: Incident) -> str:
    """One line: title, metrics, and what closes it."""
    if incident.kind == "red_flag":
        return (
            f"{incident_title(incident)}: red flag {', '.join(incident.metrics)} "
            "(closes when a run's scorecard no longer shows it)"
        )
    return (
        f"{incident_title(incident)}: {', '.join(incident.metrics) or 'no metric'} "
        f"(closes when a run passes every gate at {incident.level})"
    )


@dataclass
class AgentState:
    """One agent as it stands: contract, ledger entry, committed runs, incidents."""

    agent: str
    contract: Contract | None
    entry: LedgerEntry | None
    runs: list[RunRecord] = field(default_factory=list)
    """Every committed run, oldest first, CI runs included."""
    incidents: list[Incident] = field(default_factory=list)
    """Every incident of the agent in the ledger, newest first."""

    @cached_property
    def monitoring_runs(self) -> list[RunRecord]:
        """Golden runs of the deployed version (no CI candidates), oldest first."""
        return [r for r in self.runs if r.trigger in MONITORING_TRIGGERS and r.source == "golden"]

    @cached_property
    def production_runs(self) -> list[RunRecord]:
        """Production runs (sampled production traces), oldest first."""
        return [r for r in self.runs if r.source == "production"]

    @property
    def latest_production(self) -> RunRecord | None:
        """The most recent production run, if any."""
        return self.production_runs[-1] if self.production_runs else None

    @property
    def latest(self) -> RunRecord | None:
        """The most recent run of the deployed version."""
        return self.monitoring_runs[-1] if self.monitoring_runs else None

    @property
    def level(self) -> Level | None:
        """The level the agent holds: the ledger's, else the latest run's, else the contract's."""
        if self.entry is not None:
            return self.entry.level
        if self.latest is not None and self.latest.level in LEVELS:
            return self.latest.level
        return self.contract.autonomy.level if self.contract is not None else None

    @property
    def next_level(self) -> Level | None:
        """The level above the one it holds, or ``None`` at the top."""
        position = rank(self.level)
        return LEVELS[position + 1] if 0 <= position < len(LEVELS) - 1 else None

    @property
    def active_version(self) -> str | None:
        """The version the ledger has active, else the latest run's."""
        if self.entry is not None:
            return self.entry.active_version
        return self.latest.version if self.latest is not None else None

    @property
    def open_incidents(self) -> list[Incident]:
        """Incidents not closed yet, newest first."""
        return [i for i in self.incidents if i.status == "open"]

    def gates_at(self, level: Level | None, run: RunRecord | None = None) -> list[GateResult]:
        """The gates of ``level`` held against ``run`` (default: the latest) now.

        Verdicts are computed from the stored numbers and today's contract, so the current
        level's verdict holds even when the run was gated at another level; a gate the run
        itself held at this level with the same threshold keeps the run's verdict. A golden run is not
        held to production-only metrics (``golden_coverage``): those gates are the latest
        production run's, added after the golden run's gates. Empty without a contract, a
        level or a run.
        """
        latest = run is None
        run = run or self.latest
        if self.contract is None or level is None or run is None:
            return []
        autonomy = self.contract.autonomy
        wanted = self.contract.gates(level)
        if run.source != "production":
            wanted = {k: v for k, v in wanted.items() if k not in PRODUCTION_METRICS}
        measured = run.measured()
        held = labelled_gates(
            evaluate_gates(
                wanted, measured, autonomy.min_samples, frozenset(autonomy.rollback.metrics)
            ),
            measured,
            self.agent,
            level,
        )
        # The run's own verdict on a gate it held at this level, with the same threshold, is
        # the answer (a production gate's monitored verdict, a judge's explained agreement);
        # the others are held now, with the same rules for the owner's labels.
        stored = {g.metric: g for g in run.gates()} if run.level == level else {}
        gates = [
            stored[g.metric]
            if g.metric in stored and stored[g.metric].threshold == g.threshold
            else g
            for g in held
        ]
        production = self.latest_production
        if latest and production is not None:
            gates += [g for g in self.gates_at(level, production) if g.metric in PRODUCTION_METRICS]
        return gates

    def gated_metrics(self) -> list[str]:
        """The current and the next level's gated metrics, else those the latest run gated."""
        names: list[str] = []
        if self.contract is not None:
            for level in (self.level, self.next_level):
                if level is not None:
                    names.extend(self.contract.gates(level))
        else:
            for run in self.monitoring_runs[-1:]:
                names.extend(m.metric for m in run.gated)
        return list(dict.fromkeys(names))


def load_state(
    agent: str,
    contract: Contract | None,
    store: ResultsStore,
    ledger: Ledger | None,
    runs: Sequence[RunRecord] | None = None,
) -> AgentState:
    """Read one agent's state from the store and the ledger (``runs`` when already read)."""
    return AgentState(
        agent,
        contract,
        ledger.get(agent) if ledger is not None else None,
        list(runs) if runs is not None else store.runs(agent),
        ledger.incidents(agent) if ledger is not None else [],
    )


Tone = Literal["pass", "warn", "fail", "none"]


@dataclass(frozen=True)
class Readiness:
    """The one-line answer and the reasons behind it."""

    tone: Tone
    """``pass``, ``warn``, ``fail`` or ``none``: the colour of the answer."""
    headline: str
    reasons: list[str]

    def to_dict(self) -> dict[str, object]:
        """Plain data (``--json``)."""
        return {"tone": self.tone, "headline": self.headline, "reasons": self.reasons}


def _gate_line(gate: GateResult) -> str:
    return f"{gate.metric} {gate.threshold}: {gate.verdict} — {gate.reason}"


def readiness(state: AgentState) -> Readiness:
    """Whether the agent holds its level, may ask for the next, and what stands in the way."""
    latest, level, nxt = state.latest, state.level, state.next_level
    if latest is None:
        return Readiness("none", "No runs yet: nothing shows this agent can hold any level.", [])
    open_incidents = state.open_incidents
    reasons = [f"open {incident_line(i)}" for i in open_incidents]
    if state.contract is None:
        tone: Tone = "pass" if latest.verdict == "pass" else "fail"
        failing = [
            f"{m.metric} {m.threshold_text}: {m.verdict} — {m.reason}" for m in latest.failing
        ]
        return Readiness(tone, f"Latest run {latest.verdict} at {latest.level}.", failing + reasons)
    current = state.gates_at(level)
    below = [g for g in current if g.verdict != "pass"]
    active = state.active_version
    if active is not None and active != latest.version:
        # A rollback (or a deployment) since the latest run: nothing measured the active version.
        headline = (
            f"Not known yet: {active} is active at {level} but no run has measured it since "
            f"{latest.version}'s run of {fmt_time(latest.started_at)}; the next run decides."
        )
        return Readiness("warn", headline, reasons)
    holding = f"{latest.version} at {level}"
    if below:
        tone = "fail" if any(g.verdict == "fail" for g in below) else "warn"
        headline = f"No: {holding} does not hold its current level."
        return Readiness(tone, headline, [_gate_line(g) for g in below] + reasons)
    if nxt is None:
        tone = "warn" if open_incidents else "pass"
        return Readiness(tone, f"Holds {level}, the highest level, on {latest.version}.", reasons)
    missing = [g for g in state.gates_at(nxt) if g.verdict != "pass"]
    blockers = [_gate_line(g) for g in missing]
    production_config = state.contract.evals.production
    if production_config is not None and production_config.requires(nxt):
        production = state.latest_production
        if production is None:
            blockers.append(f"{nxt} needs production evidence as well as golden: no production run")
        else:
            blockers += [
                "production " + _gate_line(g)
                for g in state.gates_at(nxt, production)
                if g.verdict != "pass"
            ]
    approval = state.contract.autonomy.levels.get(nxt)
    needs_person = approval is not None and approval.human_approval
    if not blockers and not open_incidents:
        return Readiness(
            "pass",
            f"Yes: {holding} passes every gate of {nxt}"
            + (", pending a person's approval." if needs_person else "."),
            [],
        )
    if not blockers:
        headline = f"Not yet: {holding} passes every gate of {nxt}, but an incident is open."
    else:
        headline = f"Not yet: {holding} holds its level but is not ready for {nxt}."
    return Readiness("warn", headline, blockers + reasons)
