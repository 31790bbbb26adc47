"""The release ledger: each agent's active version, level, and last version that passed.

SQLite, one short transaction per change, so concurrent runs on the same agent serialise
instead of interleaving.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.contract import LEVELS, Level, level_rank

__all__ = ["Incident", "IncidentUpdate", "Ledger", "LedgerEntry", "LedgerEvent", "NoGoodVersion"]

_SEVERITY_RANK = {"medium": 0, "high": 1, "critical": 2}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent TEXT PRIMARY KEY,
    active_version TEXT NOT NULL,
    level TEXT NOT NULL,
    last_good_version TEXT,
    last_good_source TEXT,
    declared_version TEXT NOT NULL,
    declared_level TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    level TEXT NOT NULL,
    metrics TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    runs INTEGER NOT NULL,
    last_run_id TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


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


def _incident(row: sqlite3.Row) -> Incident:
    return Incident(
        id=row["id"],
        agent=row["agent"],
        status=row["status"],
        severity=row["severity"],
        level=row["level"],
        metrics=json.loads(row["metrics"]),
        opened_at=datetime.fromisoformat(row["opened_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        closed_at=datetime.fromisoformat(row["closed_at"]) if row["closed_at"] else None,
        runs=row["runs"],
        last_run_id=row["last_run_id"],
    )


def _open_row(conn: sqlite3.Connection, agent: str) -> sqlite3.Row | None:
    """The agent's open incident row (the newest, should there be two)."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM incidents WHERE agent = ? AND status = 'open' ORDER BY id DESC", (agent,)
    ).fetchone()
    return row


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        agent=row["agent"],
        active_version=row["active_version"],
        level=row["level"],
        last_good_version=row["last_good_version"],
        last_good_source=row["last_good_source"],
        declared_version=row["declared_version"],
        declared_level=row["declared_level"],
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class Ledger:
    """Transactional release state in a SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            # WAL lets status and reports read while a run writes.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    @staticmethod
    def _event(conn: sqlite3.Connection, agent: str, kind: str, **detail: Any) -> None:
        conn.execute(
            "INSERT INTO events (agent, at, kind, detail) VALUES (?, ?, ?, ?)",
            (agent, _now(), kind, json.dumps(detail, default=str)),
        )

    @staticmethod
    def _get(conn: sqlite3.Connection, agent: str) -> LedgerEntry | None:
        row = conn.execute("SELECT * FROM agents WHERE agent = ?", (agent,)).fetchone()
        return _entry(row) if row else None

    def get(self, agent: str) -> LedgerEntry | None:
        """The agent's entry, or ``None`` if it was never registered."""
        with self._transaction() as conn:
            return self._get(conn, agent)

    def entries(self) -> list[LedgerEntry]:
        """Every agent, by name."""
        with self._transaction() as conn:
            return [_entry(r) for r in conn.execute("SELECT * FROM agents ORDER BY agent")]

    def events(self, agent: str | None = None) -> list[LedgerEvent]:
        """Ledger history, oldest first."""
        query = "SELECT * FROM events ORDER BY id"
        args: tuple[str, ...] = ()
        if agent is not None:
            query, args = "SELECT * FROM events WHERE agent = ? ORDER BY id", (agent,)
        with self._transaction() as conn:
            return [
                LedgerEvent(
                    r["agent"], datetime.fromisoformat(r["at"]), r["kind"], json.loads(r["detail"])
                )
                for r in conn.execute(query, args)
            ]

    def sync(
        self,
        agent: str,
        declared_version: str,
        declared_level: Level,
        known_good: str | None,
        source: str,
    ) -> tuple[LedgerEntry, list[str]]:
        """Bring the ledger in line with what the contract declares.

        A new agent is registered at the declared version and level. A changed declared
        version is a deployment: it becomes active. A level in the contract lower than the
        ledger's demotes; a higher one is ignored, because autonomy moves up only through a
        promotion gate. A rollback holds until the contract declares a new version.

        Returns:
            The entry after syncing and what changed, in words.
        """
        notes: list[str] = []
        with self._transaction() as conn:
            entry = self._get(conn, agent)
            now = _now()
            if entry is None:
                conn.execute(
                    "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        agent,
                        declared_version,
                        declared_level,
                        known_good,
                        f"declared in {source}" if known_good else None,
                        declared_version,
                        declared_level,
                        now,
                    ),
                )
                self._event(conn, agent, "register", version=declared_version, level=declared_level)
                notes.append(f"registered at {declared_level} on {declared_version}")
            else:
                if declared_version != entry.declared_version:
                    conn.execute(
                        "UPDATE agents SET active_version = ?, declared_version = ?, updated_at = ? "
                        "WHERE agent = ?",
                        (declared_version, declared_version, now, agent),
                    )
                    self._event(
                        conn, agent, "deploy", before=entry.active_version, after=declared_version
                    )
                    notes.append(f"deployed {declared_version} (was {entry.active_version})")
                if declared_level != entry.declared_level:
                    conn.execute(
                        "UPDATE agents SET declared_level = ?, updated_at = ? WHERE agent = ?",
                        (declared_level, now, agent),
                    )
                    if level_rank(declared_level) < level_rank(entry.level):
                        conn.execute(
                            "UPDATE agents SET level = ? WHERE agent = ?", (declared_level, agent)
                        )
                        self._event(
                            conn,
                            agent,
                            "demote",
                            before=entry.level,
                            after=declared_level,
                            by=source,
                        )
                        notes.append(f"demoted to {declared_level} by the contract")
                    elif level_rank(declared_level) > level_rank(entry.level):
                        notes.append(
                            f"the contract says {declared_level} but the agent holds {entry.level}; "
                            "levels rise only through a promotion gate"
                        )
                if known_good and entry.last_good_version is None:
                    conn.execute(
                        "UPDATE agents SET last_good_version = ?, last_good_source = ? WHERE agent = ?",
                        (known_good, f"declared in {source}", agent),
                    )
            synced = self._get(conn, agent)
        assert synced is not None
        return synced, notes

    def record_pass(self, agent: str, version: str, run_id: str) -> LedgerEntry:
        """Mark ``version`` as the last good version after a run passed every gate."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE agents SET last_good_version = ?, last_good_source = ?, updated_at = ? "
                "WHERE agent = ?",
                (version, f"run {run_id}", _now(), agent),
            )
            self._event(conn, agent, "pass", version=version, run_id=run_id)
            entry = self._get(conn, agent)
        if entry is None:
            raise KeyError(f"agent '{agent}' is not in the ledger")
        return entry

    def rollback(
        self, agent: str, demote_to: Level, reason: str, run_id: str | None = None
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Re-pin the last good version and demote. Idempotent.

        Returns:
            The entry before and after.

        Raises:
            NoGoodVersion: no version has passed, so there is nothing safe to return to.
            KeyError: the agent is not registered.
        """
        with self._transaction() as conn:
            before = self._get(conn, agent)
            if before is None:
                raise KeyError(f"agent '{agent}' is not in the ledger")
            if before.last_good_version is None:
                self._event(conn, agent, "rollback_refused", reason=reason, run_id=run_id)
                raise NoGoodVersion(
                    f"{agent}: no version has passed its gates, so there is nothing to roll back to"
                )
            level = LEVELS[min(level_rank(before.level), level_rank(demote_to))]
            conn.execute(
                "UPDATE agents SET active_version = ?, level = ?, updated_at = ? WHERE agent = ?",
                (before.last_good_version, level, _now(), agent),
            )
            self._event(
                conn, agent, "rollback",
                version_before=before.active_version, version_after=before.last_good_version,
                level_before=before.level, level_after=level, reason=reason, run_id=run_id,
            )  # fmt: skip
            after = self._get(conn, agent)
        assert after is not None
        return before, after

    # -- promotion and manual moves ----------------------------------------------------------

    def promote(
        self, agent: str, level: Level, version: str, run_id: str, approved_by: str | None
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Raise the agent to ``level`` on the evidence of ``run_id`` (which passed every gate).

        Returns:
            The entry before and after.

        Raises:
            KeyError: the agent is not registered.
            ValueError: ``level`` is not above the agent's current level, or ``version`` is
                not the active version (what was evaluated is not what is served).
        """
        with self._transaction() as conn:
            before = self._get(conn, agent)
            if before is None:
                raise KeyError(f"agent '{agent}' is not in the ledger")
            if level_rank(level) <= level_rank(before.level):
                raise ValueError(
                    f"{agent} is already at {before.level}; promotion goes up the ladder"
                )
            if version != before.active_version:
                raise ValueError(
                    f"{agent} serves {before.active_version}, not the evaluated {version}"
                )
            conn.execute(
                "UPDATE agents SET level = ?, last_good_version = ?, last_good_source = ?, "
                "updated_at = ? WHERE agent = ?",
                (level, version, f"run {run_id}", _now(), agent),
            )
            self._event(
                conn,
                agent,
                "promote",
                level_before=before.level,
                level_after=level,
                version=version,
                run_id=run_id,
                approved_by=approved_by,
            )
            after = self._get(conn, agent)
        assert after is not None
        return before, after

    def repin(
        self, agent: str, version: str, demote_to: Level | None, reason: str, actor: str
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Make ``version`` active (a person's rollback to a chosen version), demoting if asked.

        Raises:
            KeyError: the agent is not registered.
        """
        with self._transaction() as conn:
            before = self._get(conn, agent)
            if before is None:
                raise KeyError(f"agent '{agent}' is not in the ledger")
            level = (
                before.level
                if demote_to is None
                else LEVELS[min(level_rank(before.level), level_rank(demote_to))]
            )
            conn.execute(
                "UPDATE agents SET active_version = ?, level = ?, updated_at = ? WHERE agent = ?",
                (version, level, _now(), agent),
            )
            self._event(
                conn,
                agent,
                "repin",
                version_before=before.active_version,
                version_after=version,
                level_before=before.level,
                level_after=level,
                reason=reason,
                actor=actor,
            )
            after = self._get(conn, agent)
        assert after is not None
        return before, after

    # -- incidents ---------------------------------------------------------------------------

    def open_incident(self, agent: str) -> Incident | None:
        """The agent's open incident, if any."""
        with self._transaction() as conn:
            row = _open_row(conn, agent)
        return _incident(row) if row else None

    def incidents(self, agent: str | None = None, open_only: bool = False) -> list[Incident]:
        """Incidents, newest first."""
        query = "SELECT * FROM incidents WHERE 1 = 1"
        args: list[str] = []
        if agent is not None:
            query += " AND agent = ?"
            args.append(agent)
        if open_only:
            query += " AND status = 'open'"
        with self._transaction() as conn:
            return [_incident(r) for r in conn.execute(query + " ORDER BY id DESC", args)]

    def record_breach(
        self, agent: str, metrics: list[str], severity: str, run_id: str | None, level: Level
    ) -> IncidentUpdate:
        """Open an incident for a breach, or update the open one.

        The same breach on consecutive runs updates one incident instead of opening another;
        new metrics or a higher severity make it worse (worth paging again).
        """
        with self._transaction() as conn:
            row = _open_row(conn, agent)
            now = _now()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO incidents (agent, status, severity, level, metrics, opened_at, "
                    "updated_at, runs, last_run_id) VALUES (?, 'open', ?, ?, ?, ?, ?, 1, ?)",
                    (agent, severity, level, json.dumps(sorted(metrics)), now, now, run_id),
                )
                self._event(
                    conn,
                    agent,
                    "incident_open",
                    incident=cursor.lastrowid,
                    metrics=metrics,
                    severity=severity,
                    run_id=run_id,
                )
                new = conn.execute(
                    "SELECT * FROM incidents WHERE id = ?", (cursor.lastrowid,)
                ).fetchone()
                return IncidentUpdate(_incident(new), opened=True, worse=False)
            current = _incident(row)
            merged = sorted(set(current.metrics) | set(metrics))
            worse_severity = _SEVERITY_RANK.get(severity, 0) > _SEVERITY_RANK.get(
                current.severity, 0
            )
            worse = merged != current.metrics or worse_severity
            top = severity if worse_severity else current.severity
            conn.execute(
                "UPDATE incidents SET metrics = ?, severity = ?, updated_at = ?, runs = runs + 1, "
                "last_run_id = ? WHERE id = ?",
                (json.dumps(merged), top, now, run_id, current.id),
            )
            updated = conn.execute("SELECT * FROM incidents WHERE id = ?", (current.id,)).fetchone()
            return IncidentUpdate(_incident(updated), opened=False, worse=worse)

    def close_incidents(self, agent: str, run_id: str | None, level: Level) -> list[Incident]:
        """Close the incidents a run passing at ``level`` resolves; the closed ones are returned.

        An incident closes when the agent passes at the level it held when the incident
        opened: an escalation recovers on the next clean night, a rollback that demoted the
        agent stays open until it has earned its level back.
        """
        with self._transaction() as conn:
            rows = [
                r
                for r in conn.execute(
                    "SELECT * FROM incidents WHERE agent = ? AND status = 'open'", (agent,)
                ).fetchall()
                if level_rank(r["level"]) <= level_rank(level)
            ]
            now = _now()
            for row in rows:
                conn.execute(
                    "UPDATE incidents SET status = 'closed', closed_at = ?, updated_at = ?, "
                    "last_run_id = ? WHERE id = ?",
                    (now, now, run_id, row["id"]),
                )
                self._event(conn, agent, "incident_close", incident=row["id"], run_id=run_id)
            closed = [
                conn.execute("SELECT * FROM incidents WHERE id = ?", (r["id"],)).fetchone()
                for r in rows
            ]
        return [_incident(r) for r in closed]
