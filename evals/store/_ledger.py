"""The release ledger's repository: versions, levels, incidents and history, transactional.

Each agent's active version, level, last good version, incidents and history live in one
database.

A thin repository: each change loads the agent's rows inside one transaction that holds the
agent (SQLite: ``BEGIN IMMEDIATE``; other databases: a ``SERIALIZABLE`` transaction that also
row-locks the agent), applies one of the pure rules of ``_transitions.py`` and saves the
result, so concurrent runs on the same agent serialise instead of interleaving. A transaction
the database aborts for a conflict (serialization failure, deadlock, or two workers
registering one agent at once) is retried from the start, so no decision or incident is lost
or recorded twice; at most one incident per agent is open (a unique index holds that).
SQLite in the results folder is the embedded default; any SQLAlchemy URL
(``postgresql+psycopg://…``) selects another database.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from evals.contract import Level
from evals.store import _transitions as rules
from evals.store._transitions import (
    Change,
    Incident,
    IncidentUpdate,
    LedgerEntry,
    LedgerEvent,
    NoGoodVersion,
)

__all__ = ["Incident", "IncidentUpdate", "Ledger", "LedgerEntry", "LedgerEvent", "NoGoodVersion"]

_META = sa.MetaData()
AGENTS = sa.Table(
    "agents",
    _META,
    sa.Column("agent", sa.Text, primary_key=True),
    sa.Column("active_version", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("last_good_version", sa.Text),
    sa.Column("last_good_source", sa.Text),
    sa.Column("declared_version", sa.Text, nullable=False),
    sa.Column("declared_level", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
)
INCIDENTS = sa.Table(
    "incidents",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("opened_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("closed_at", sa.Text),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("last_run_id", sa.Text),
    sa.Column("kind", sa.Text, nullable=False, server_default="breach"),
)
# One open breach incident per agent, whatever interleaves: a second insert fails and is
# retried. Red flags have one open incident per flag, deduplicated under the agent's lock.
_OPEN_BREACH = sa.and_(INCIDENTS.c.status == "open", INCIDENTS.c.kind == "breach")
sa.Index(
    "one_open_incident_per_agent",
    INCIDENTS.c.agent,
    unique=True,
    sqlite_where=_OPEN_BREACH,
    postgresql_where=_OPEN_BREACH,
)
EVENTS = sa.Table(
    "events",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.Text, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

T = TypeVar("T")

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> Engine:
    """One engine per database, created (with the tables) on first use."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        if url.startswith("sqlite"):
            # No pooled connections to a file; every transaction takes the write lock up
            # front (BEGIN IMMEDIATE) so two writers queue instead of failing mid-way.
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"timeout": 60})

            @sa.event.listens_for(engine, "connect")
            def _connect(dbapi_connection: Any, _: Any) -> None:
                dbapi_connection.isolation_level = None
                dbapi_connection.execute("PRAGMA journal_mode=WAL")  # readers never wait

            @sa.event.listens_for(engine, "begin")
            def _begin(connection: Connection) -> None:
                reading = connection.get_execution_options().get("reading", False)
                connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

        else:
            # Serializable: whatever two workers interleave, the outcome is one of the serial
            # orders; the database aborts the loser, and ``_atomic`` runs it again.
            engine = sa.create_engine(url, pool_pre_ping=True, isolation_level="SERIALIZABLE")
        _create_tables(engine)
        _add_kind(engine)
        _ENGINES[url] = engine
        return engine


def _create_tables(engine: Engine) -> None:
    """Create missing tables; two processes creating them at once is not an error."""
    for attempt in range(5):
        try:
            _META.create_all(engine, checkfirst=True)
            return
        except sa.exc.DBAPIError as exc:
            # PostgreSQL: the other process created a table or type between check and create.
            if attempt == 4 or _sqlstate(exc) not in {"23505", "42P07", "42710", "40001"}:
                raise
            time.sleep(0.05 * 2**attempt)


def _add_kind(engine: Engine) -> None:
    """A ledger created before incidents had a kind gets the column (every row a breach)."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("incidents")}
    if "kind" not in columns:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "ALTER TABLE incidents ADD COLUMN kind TEXT NOT NULL DEFAULT 'breach'"
            )


def _now() -> datetime:
    return datetime.now(UTC)


def _text(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="microseconds") if moment is not None else None


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        agent=row.agent,
        active_version=row.active_version,
        level=row.level,
        last_good_version=row.last_good_version,
        last_good_source=row.last_good_source,
        declared_version=row.declared_version,
        declared_level=row.declared_level,
        updated_at=datetime.fromisoformat(row.updated_at),
    )


def _entry_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "agent": entry.agent,
        "active_version": entry.active_version,
        "level": entry.level,
        "last_good_version": entry.last_good_version,
        "last_good_source": entry.last_good_source,
        "declared_version": entry.declared_version,
        "declared_level": entry.declared_level,
        "updated_at": _text(entry.updated_at),
    }


def _incident(row: Any) -> Incident:
    return Incident(
        id=row.id,
        agent=row.agent,
        status=row.status,
        severity=row.severity,
        level=row.level,
        metrics=json.loads(row.metrics),
        opened_at=datetime.fromisoformat(row.opened_at),
        updated_at=datetime.fromisoformat(row.updated_at),
        closed_at=datetime.fromisoformat(row.closed_at) if row.closed_at else None,
        runs=row.runs,
        last_run_id=row.last_run_id,
        kind=row.kind,
    )


def _incident_row(incident: Incident) -> dict[str, Any]:
    return {
        "agent": incident.agent,
        "status": incident.status,
        "severity": incident.severity,
        "level": incident.level,
        "metrics": json.dumps(sorted(incident.metrics)),
        "opened_at": _text(incident.opened_at),
        "updated_at": _text(incident.updated_at),
        "closed_at": _text(incident.closed_at),
        "runs": incident.runs,
        "last_run_id": incident.last_run_id,
        "kind": incident.kind,
    }


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(code) if code else None


def _is_retryable(exc: sa.exc.DBAPIError) -> bool:
    """A conflict to retry from the start.

    A serialization failure, a deadlock, or a unique key another transaction committed first
    (two workers registering one agent or opening its incident at once; the retry sees it).
    """
    return _sqlstate(exc) in {"40001", "40P01", "23505"}


class Ledger:
    """Transactional release state, incidents and history of every agent.

    Args:
        where: a SQLite file path, or an SQLAlchemy database URL.
    """

    def __init__(self, where: str | Path) -> None:
        text = str(where)
        if "://" in text:
            self.url = text
            self.path: Path | None = None
        else:
            self.path = Path(text)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.url = f"sqlite:///{self.path.resolve()}"
        self._engine = _engine(self.url)

    def __repr__(self) -> str:
        shown = self.path if self.path is not None else sa.make_url(self.url).render_as_string()
        return f"Ledger({shown})"

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read: never waits for the write lock (SQLite WAL readers see the last commit)."""
        with self._engine.connect() as conn:
            yield conn.execution_options(reading=True)

    def _atomic(self, work: Callable[[Connection], T], attempts: int = 12) -> T:
        """Run ``work`` in one transaction, retrying when the database reports a conflict.

        ``work`` must only read and write through ``conn``: a retry runs it again from the
        start on fresh rows, which is what makes the retry safe.
        """
        for attempt in range(attempts):
            try:
                with self._transaction() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if attempt == attempts - 1 or not _is_retryable(exc):
                    raise
                # Jittered backoff so the same two workers do not collide again in step.
                time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    @staticmethod
    def _lock(conn: Connection, agent: str) -> LedgerEntry | None:
        """The agent's entry, held until the transaction ends (no-op lock on SQLite)."""
        query = sa.select(AGENTS).where(AGENTS.c.agent == agent)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).first()
        return _entry(row) if row is not None else None

    @staticmethod
    def _save(conn: Connection, change: Change, new: bool = False) -> LedgerEntry:
        row = _entry_row(change.entry)
        if new:
            conn.execute(sa.insert(AGENTS).values(**row))
        else:
            conn.execute(
                sa.update(AGENTS).where(AGENTS.c.agent == change.entry.agent).values(**row)
            )
        for kind, detail in change.events:
            Ledger._event(conn, change.entry.agent, kind, detail)
        return change.entry

    @staticmethod
    def _update_incident(conn: Connection, incident: Incident) -> None:
        conn.execute(
            sa.update(INCIDENTS)
            .where(INCIDENTS.c.id == incident.id)
            .values(**_incident_row(incident))
        )

    def _close_incidents(
        self, conn: Connection, agent: str, closed: list[Incident], event: str, run_id: str | None
    ) -> None:
        """Store incidents a run closed, each with its ``event``."""
        for incident in closed:
            self._update_incident(conn, incident)
            self._event(conn, agent, event, {"incident": incident.id, "run_id": run_id})

    @staticmethod
    def _event(conn: Connection, agent: str, kind: str, detail: dict[str, Any]) -> None:
        conn.execute(
            sa.insert(EVENTS).values(
                agent=agent, at=_text(_now()), kind=kind, detail=json.dumps(detail, default=str)
            )
        )

    def _change(
        self, agent: str, rule: Callable[[LedgerEntry], Change]
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Apply ``rule`` to the agent's entry; the entry before and after.

        Raises:
            KeyError: the agent is not registered.
        """

        def work(conn: Connection) -> tuple[LedgerEntry, LedgerEntry]:
            before = self._lock(conn, agent)
            if before is None:
                raise KeyError(f"agent '{agent}' is not in the ledger")
            return before, self._save(conn, rule(before))

        return self._atomic(work)

    # -- reading ------------------------------------------------------------------------------

    def get(self, agent: str) -> LedgerEntry | None:
        """The agent's entry, or ``None`` if it was never registered."""
        with self._reading() as conn:
            row = conn.execute(sa.select(AGENTS).where(AGENTS.c.agent == agent)).first()
        return _entry(row) if row is not None else None

    def entries(self) -> list[LedgerEntry]:
        """Every agent, by name."""
        with self._reading() as conn:
            return [_entry(r) for r in conn.execute(sa.select(AGENTS).order_by(AGENTS.c.agent))]

    def events(self, agent: str | None = None) -> list[LedgerEvent]:
        """Ledger history, oldest first."""
        query = sa.select(EVENTS).order_by(EVENTS.c.id)
        if agent is not None:
            query = query.where(EVENTS.c.agent == agent)
        with self._reading() as conn:
            return [
                LedgerEvent(r.agent, datetime.fromisoformat(r.at), r.kind, json.loads(r.detail))
                for r in conn.execute(query)
            ]

    def open_incident(self, agent: str) -> Incident | None:
        """The agent's open breach incident, if any (the newest, should there be two)."""
        found = self.incidents(agent, open_only=True, kind="breach")
        return found[0] if found else None

    def incidents(
        self, agent: str | None = None, open_only: bool = False, kind: str | None = None
    ) -> list[Incident]:
        """Incidents, newest first (``kind``: only ``breach`` or ``red_flag`` ones)."""
        query = sa.select(INCIDENTS).order_by(INCIDENTS.c.id.desc())
        if agent is not None:
            query = query.where(INCIDENTS.c.agent == agent)
        if open_only:
            query = query.where(INCIDENTS.c.status == "open")
        if kind is not None:
            query = query.where(INCIDENTS.c.kind == kind)
        with self._reading() as conn:
            return [_incident(r) for r in conn.execute(query)]

    # -- release state ------------------------------------------------------------------------

    def sync(
        self,
        agent: str,
        declared_version: str,
        declared_level: Level,
        known_good: str | None,
        source: str,
    ) -> tuple[LedgerEntry, list[str]]:
        """Bring the ledger in line with what the contract declares (see ``rules.synced``).

        Returns:
            The entry after syncing and what changed, in words.
        """

        def work(conn: Connection) -> tuple[LedgerEntry, list[str]]:
            entry = self._lock(conn, agent)
            if entry is None:
                change = rules.registered(
                    agent, declared_version, declared_level, known_good, source, _now()
                )
                return self._save(conn, change, new=True), change.notes
            change = rules.synced(
                entry, declared_version, declared_level, known_good, source, _now()
            )
            if change.entry != entry:
                self._save(conn, change)
            return change.entry, change.notes

        return self._atomic(work)

    def record_pass(self, agent: str, version: str, run_id: str) -> LedgerEntry:
        """Mark ``version`` as the last good version after a run passed every gate."""
        return self._change(agent, lambda e: rules.with_pass(e, version, run_id, _now()))[1]

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

        def work(conn: Connection) -> tuple[LedgerEntry, LedgerEntry] | NoGoodVersion:
            before = self._lock(conn, agent)
            if before is None:
                raise KeyError(f"agent '{agent}' is not in the ledger")
            try:
                change = rules.rolled_back(before, demote_to, reason, run_id, _now())
            except NoGoodVersion as refused:
                # The refusal is history too: committed, then raised.
                self._event(conn, agent, "rollback_refused", {"reason": reason, "run_id": run_id})
                return refused
            return before, self._save(conn, change)

        outcome = self._atomic(work)
        if isinstance(outcome, NoGoodVersion):
            raise outcome
        return outcome

    def promote(
        self, agent: str, level: Level, version: str, run_id: str, approved_by: str | None
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Raise the agent to ``level`` on the evidence of ``run_id`` (which passed every gate).

        Raises:
            KeyError: the agent is not registered.
            ValueError: ``level`` is not above the agent's current level, or ``version`` is
                not the active version.
        """
        return self._change(
            agent, lambda e: rules.promoted(e, level, version, run_id, approved_by, _now())
        )

    def repin(
        self, agent: str, version: str, demote_to: Level | None, reason: str, actor: str
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Make ``version`` active (a person's rollback to a chosen version), demoting if asked.

        Raises:
            KeyError: the agent is not registered.
        """
        return self._change(
            agent, lambda e: rules.repinned(e, version, demote_to, reason, actor, _now())
        )

    # -- incidents ----------------------------------------------------------------------------

    def record_breach(
        self, agent: str, metrics: list[str], severity: str, run_id: str | None, level: Level
    ) -> IncidentUpdate:
        """Open an incident for a breach, or update the open one (see ``rules.merge_breach``)."""

        def work(conn: Connection) -> IncidentUpdate:
            self._lock(conn, agent)  # incidents of one agent change one at a time
            row = conn.execute(
                sa.select(INCIDENTS)
                .where(
                    INCIDENTS.c.agent == agent,
                    INCIDENTS.c.status == "open",
                    INCIDENTS.c.kind == "breach",
                )
                .order_by(INCIDENTS.c.id.desc())
            ).first()
            current = _incident(row) if row is not None else None
            update = rules.merge_breach(current, agent, metrics, severity, level, run_id, _now())
            values = _incident_row(update.incident)
            if update.opened:
                inserted = conn.execute(sa.insert(INCIDENTS).values(**values)).inserted_primary_key
                assert inserted is not None
                incident = replace(update.incident, id=int(inserted[0]))
                self._event(
                    conn,
                    agent,
                    "incident_open",
                    {
                        "incident": incident.id,
                        "metrics": metrics,
                        "severity": severity,
                        "run_id": run_id,
                    },
                )
                return IncidentUpdate(incident, opened=True, worse=False)
            self._update_incident(conn, update.incident)
            return update

        return self._atomic(work)

    def close_incidents(
        self,
        agent: str,
        run_id: str | None,
        level: Level,
        judged: Collection[str] | None = None,
    ) -> list[Incident]:
        """Close the incidents a run passing at ``level`` resolves; the closed ones are returned.

        ``judged``: the metrics the run gated; an incident on any other metric stays open.
        """

        def work(conn: Connection) -> list[Incident]:
            self._lock(conn, agent)
            open_rows = conn.execute(
                sa.select(INCIDENTS).where(
                    INCIDENTS.c.agent == agent,
                    INCIDENTS.c.status == "open",
                    INCIDENTS.c.kind == "breach",
                )
            )
            closed = rules.closing([_incident(r) for r in open_rows], level, run_id, _now(), judged)
            self._close_incidents(conn, agent, closed, "incident_close", run_id)
            return closed

        return self._atomic(work)

    def record_red_flags(
        self, agent: str, raised: list[str], level: str, run_id: str | None
    ) -> tuple[list[IncidentUpdate], list[Incident]]:
        """Open, update or close the agent's red-flag incidents (``rules.merge_red_flags``).

        Returns the incidents opened or updated, and those closed.
        """

        def work(conn: Connection) -> tuple[list[IncidentUpdate], list[Incident]]:
            self._lock(conn, agent)
            rows = conn.execute(
                sa.select(INCIDENTS).where(
                    INCIDENTS.c.agent == agent,
                    INCIDENTS.c.status == "open",
                    INCIDENTS.c.kind == "red_flag",
                )
            )
            updates, closed = rules.merge_red_flags(
                [_incident(r) for r in rows], agent, raised, level, run_id, _now()
            )
            stored = []
            for update in updates:
                values = _incident_row(update.incident)
                if update.opened:
                    inserted = conn.execute(sa.insert(INCIDENTS).values(**values))
                    key = inserted.inserted_primary_key
                    assert key is not None
                    incident = replace(update.incident, id=int(key[0]))
                    self._event(
                        conn, agent, "red_flag_open",
                        {"incident": incident.id, "flag": incident.metrics[0], "run_id": run_id},
                    )  # fmt: skip
                    stored.append(IncidentUpdate(incident, opened=True, worse=False))
                else:
                    self._update_incident(conn, update.incident)
                    stored.append(update)
            self._close_incidents(conn, agent, closed, "red_flag_close", run_id)
            return stored, closed

        return self._atomic(work)
