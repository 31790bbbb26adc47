"""The release ledger's rules as pure functions: state in, new state and events out.

No database here: the ledger repository (``_ledger.py``) loads the rows a change needs inside
one transaction, calls one of these, and saves what it returns. Every rule (what a deployment
is, what a rollback may do, when an incident is news, when it closes) lives in this module
and is tested without a database.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from evals.contract import LEVELS, Level, level_rank

__all__ = [
    "SEVERITY_RANK",
    "Change",
    "Incident",
    "IncidentUpdate",
    "LedgerEntry",
    "LedgerEvent",
    "NoGoodVersion",
    "closing",
    "demoted",
    "merge_breach",
    "merge_red_flags",
    "promoted",
    "registered",
    "repinned",
    "rolled_back",
    "synced",
    "with_pass",
]

SEVERITY_RANK = {"medium": 0, "high": 1, "critical": 2}


class NoGoodVersion(Exception):
    """A rollback was asked for but no version of the agent has ever passed."""


@dataclass(frozen=True)
class LedgerEntry:
    """An agent's release state."""

    agent: str
    active_version: str
    level: Level
    last_good_version: str | None
    last_good_source: str | None
    """``run <run_id>`` when a run showed it, or where it was declared."""
    declared_version: str
    """The version the contract's target last declared (a change means a deployment)."""
    declared_level: Level
    updated_at: datetime


@dataclass(frozen=True)
class LedgerEvent:
    """One change to the ledger."""

    agent: str
    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Incident:
    """An open (or closed) breach of one agent, updated night after night until it recovers."""

    id: int
    agent: str
    status: str
    """``open`` or ``closed``."""
    severity: str
    level: str
    """The level the agent held when it opened: a run must pass at that level to close it."""
    metrics: list[str]
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    runs: int
    """How many runs have breached since it opened."""
    last_run_id: str | None
    kind: str = "breach"
    """``breach`` (a gate of the level) or ``red_flag`` (a pattern the scorecard saw, named
    by its one metric: ``adoption_without_outcome`` …); each kind opens and closes apart."""


@dataclass(frozen=True)
class IncidentUpdate:
    """What recording a breach did to the agent's incident."""

    incident: Incident
    opened: bool
    """A new incident: page."""
    worse: bool
    """An open incident got new metrics or a higher severity: page again."""

    @property
    def page(self) -> bool:
        """Whether people should be told (a repeat of the same breach is not news)."""
        return self.opened or self.worse


@dataclass(frozen=True)
class Change:
    """A ledger entry after a change, with the events to append and what changed in words."""

    entry: LedgerEntry
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """``(kind, detail)`` of each event, in order."""
    notes: list[str] = field(default_factory=list)


def registered(
    agent: str,
    declared_version: str,
    declared_level: Level,
    known_good: str | None,
    source: str,
    now: datetime,
) -> Change:
    """A new agent: registered at the declared version and level."""
    entry = LedgerEntry(
        agent=agent,
        active_version=declared_version,
        level=declared_level,
        last_good_version=known_good,
        last_good_source=f"declared in {source}" if known_good else None,
        declared_version=declared_version,
        declared_level=declared_level,
        updated_at=now,
    )
    return Change(
        entry,
        [("register", {"version": declared_version, "level": declared_level})],
        [f"registered at {declared_level} on {declared_version}"],
    )


def synced(
    entry: LedgerEntry,
    declared_version: str,
    declared_level: Level,
    known_good: str | None,
    source: str,
    now: datetime,
) -> Change:
    """Bring an entry in line with what the contract declares.

    A changed declared version is a deployment: it becomes active. A level in the contract
    lower than the ledger's demotes; a higher one is ignored, because autonomy moves up only
    through a promotion gate. A rollback holds until the contract declares a new version.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    notes: list[str] = []
    after = entry
    if declared_version != entry.declared_version:
        after = replace(
            after,
            active_version=declared_version,
            declared_version=declared_version,
            updated_at=now,
        )
        events.append(("deploy", {"before": entry.active_version, "after": declared_version}))
        notes.append(f"deployed {declared_version} (was {entry.active_version})")
    if declared_level != entry.declared_level:
        after = replace(after, declared_level=declared_level, updated_at=now)
        if level_rank(declared_level) < level_rank(entry.level):
            after = replace(after, level=declared_level)
            events.append(
                ("demote", {"before": entry.level, "after": declared_level, "by": source})
            )
            notes.append(f"demoted to {declared_level} by the contract")
        elif level_rank(declared_level) > level_rank(entry.level):
            notes.append(
                f"the contract says {declared_level} but the agent holds {entry.level}; "
                "levels rise only through a promotion gate"
            )
    if known_good and entry.last_good_version is None:
        after = replace(
            after, last_good_version=known_good, last_good_source=f"declared in {source}"
        )
    return Change(after, events, notes)


def with_pass(entry: LedgerEntry, version: str, run_id: str, now: datetime) -> Change:
    """``version`` is the last good version: a run of it passed every gate."""
    after = replace(
        entry, last_good_version=version, last_good_source=f"run {run_id}", updated_at=now
    )
    return Change(after, [("pass", {"version": version, "run_id": run_id})])


def rolled_back(
    entry: LedgerEntry, demote_to: Level, reason: str, run_id: str | None, now: datetime
) -> Change:
    """Re-pin the last good version and demote (never above the current level). Idempotent.

    Raises:
        NoGoodVersion: no version has passed, so there is nothing safe to return to.
    """
    if entry.last_good_version is None:
        raise NoGoodVersion(
            f"{entry.agent}: no version has passed its gates, so there is nothing to roll back to"
        )
    level = LEVELS[min(level_rank(entry.level), level_rank(demote_to))]
    after = replace(entry, active_version=entry.last_good_version, level=level, updated_at=now)
    detail = {
        "version_before": entry.active_version,
        "version_after": entry.last_good_version,
        "level_before": entry.level,
        "level_after": level,
        "reason": reason,
        "run_id": run_id,
    }
    return Change(after, [("rollback", detail)])


def promoted(
    entry: LedgerEntry,
    level: Level,
    version: str,
    run_id: str,
    approved_by: str | None,
    now: datetime,
) -> Change:
    """Raise the agent to ``level`` on the evidence of ``run_id``.

    Raises:
        ValueError: ``level`` is not above the agent's current level, or ``version`` is not
            the active version (what was evaluated is not what is served).
    """
    if level_rank(level) <= level_rank(entry.level):
        raise ValueError(f"{entry.agent} is already at {entry.level}; promotion goes up the ladder")
    if version != entry.active_version:
        raise ValueError(
            f"{entry.agent} serves {entry.active_version}, not the evaluated {version}"
        )
    after = replace(
        entry,
        level=level,
        last_good_version=version,
        last_good_source=f"run {run_id}",
        updated_at=now,
    )
    detail = {
        "level_before": entry.level,
        "level_after": level,
        "version": version,
        "run_id": run_id,
        "approved_by": approved_by,
    }
    return Change(after, [("promote", detail)])


def repinned(
    entry: LedgerEntry,
    version: str,
    demote_to: Level | None,
    reason: str,
    actor: str,
    now: datetime,
) -> Change:
    """A person makes ``version`` active, demoting if asked (never above the current level)."""
    level = (
        entry.level
        if demote_to is None
        else LEVELS[min(level_rank(entry.level), level_rank(demote_to))]
    )
    after = replace(entry, active_version=version, level=level, updated_at=now)
    detail = {
        "version_before": entry.active_version,
        "version_after": version,
        "level_before": entry.level,
        "level_after": level,
        "reason": reason,
        "actor": actor,
    }
    return Change(after, [("repin", detail)])


def demoted(entry: LedgerEntry, level: Level, reason: str, actor: str, now: datetime) -> Change:
    """Lower the agent's level (a breach that demotes without a rollback)."""
    new = LEVELS[min(level_rank(entry.level), level_rank(level))]
    after = replace(entry, level=new, updated_at=now)
    detail = {"before": entry.level, "after": new, "reason": reason, "by": actor}
    return Change(after, [("demote", detail)] if new != entry.level else [])


def merge_breach(
    open_incident: Incident | None,
    agent: str,
    metrics: Sequence[str],
    severity: str,
    level: str,
    run_id: str | None,
    now: datetime,
) -> IncidentUpdate:
    """A breach opens an incident, or updates the open one.

    The same breach on consecutive runs updates one incident instead of opening another;
    new metrics or a higher severity make it worse (worth paging again). A new incident's
    ``id`` is 0 until the repository stores it.
    """
    if open_incident is None:
        incident = Incident(
            id=0,
            agent=agent,
            status="open",
            severity=severity,
            level=level,
            metrics=sorted(set(metrics)),
            opened_at=now,
            updated_at=now,
            closed_at=None,
            runs=1,
            last_run_id=run_id,
        )
        return IncidentUpdate(incident, opened=True, worse=False)
    merged = sorted(set(open_incident.metrics) | set(metrics))
    higher = SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(open_incident.severity, 0)
    incident = replace(
        open_incident,
        metrics=merged,
        severity=severity if higher else open_incident.severity,
        updated_at=now,
        runs=open_incident.runs + 1,
        last_run_id=run_id,
    )
    return IncidentUpdate(incident, opened=False, worse=merged != open_incident.metrics or higher)


def closing(
    incidents: Sequence[Incident],
    level: str,
    run_id: str | None,
    now: datetime,
    judged: Collection[str] | None = None,
) -> list[Incident]:
    """The open incidents a run passing every gate at ``level`` closes, closed.

    An incident closes when the agent passes at the level it held when the incident opened:
    an escalation recovers on the next clean night, a rollback that demoted the agent stays
    open until it has earned its level back. With ``judged`` (the metrics the run gated), only
    incidents whose every metric the run judged close: a golden run does not close an
    incident a production run opened on ``golden_coverage``.
    """
    rank = level_rank(level) if level in LEVELS else -1
    return [
        replace(i, status="closed", closed_at=now, updated_at=now, last_run_id=run_id)
        for i in incidents
        if i.status == "open"
        and i.kind == "breach"
        and i.level in LEVELS
        and level_rank(i.level) <= rank
        and (judged is None or set(i.metrics) <= set(judged))
    ]


def merge_red_flags(
    open_flags: Sequence[Incident],
    agent: str,
    raised: Sequence[str],
    level: str,
    run_id: str | None,
    now: datetime,
) -> tuple[list[IncidentUpdate], list[Incident]]:
    """The red flags a run saw, against the agent's open red-flag incidents.

    One open incident per flag: a flag seen again updates its incident (another run, not a
    new page), a new flag opens one (medium, a new incident's ``id`` is 0 until stored), and
    an open flag the run no longer sees is closed. Returns ``(opened or updated, closed)``.
    """
    current = {i.metrics[0]: i for i in open_flags if i.status == "open" and i.metrics}
    updates = []
    for flag in dict.fromkeys(raised):
        found = current.get(flag)
        if found is None:
            incident = Incident(
                id=0, agent=agent, status="open", severity="medium", level=level,
                metrics=[flag], opened_at=now, updated_at=now, closed_at=None, runs=1,
                last_run_id=run_id, kind="red_flag",
            )  # fmt: skip
            updates.append(IncidentUpdate(incident, opened=True, worse=False))
        else:
            updated = replace(found, updated_at=now, runs=found.runs + 1, last_run_id=run_id)
            updates.append(IncidentUpdate(updated, opened=False, worse=False))
    closed = [
        replace(i, status="closed", closed_at=now, updated_at=now, last_run_id=run_id)
        for flag, i in current.items()
        if flag not in raised
    ]
    return updates, closed
