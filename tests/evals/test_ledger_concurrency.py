"""Several processes writing one ledger at once never lose or duplicate a decision or incident.

The same workload runs on the embedded SQLite file and on a real PostgreSQL cluster started by
the tests (``postgres_db``): worker processes register one agent at the same moment, record
breaches of it, passes and rollbacks, and close its incident, each phase started together
behind a barrier. Every call must be recorded exactly once.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from evals.errors import UserError
from evals.store import Ledger, existing_ledger, ledger_for, ledger_path

WORKERS = 4
ROUNDS = 8


def _worker(where: str, index: int, barrier: Any, failures: Any) -> None:
    try:
        ledger = Ledger(where)
        barrier.wait(timeout=120)
        ledger.sync("shared", "v2", "expanded", "v1", "policies/shared.yaml")
        barrier.wait(timeout=120)
        for j in range(ROUNDS):
            ledger.record_breach("shared", ["leak"], "high", f"run-{index}-{j}", "expanded")
            if (index + j) % 2:
                ledger.rollback("shared", "approval", f"worker {index}", f"run-{index}-{j}")
            else:
                ledger.record_pass("shared", "v1", f"pass-{index}-{j}")
        barrier.wait(timeout=120)
        ledger.close_incidents("shared", f"close-{index}", "expanded")
    except BaseException as exc:
        failures.put(f"worker {index}: {type(exc).__name__}: {exc}")
        barrier.abort()
        raise


def _run_workers(where: str) -> None:
    # Separate processes, forked from a clean server process (no threads, no test state)
    # that imported this module, and the engine with it, once rather than once a worker.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    barrier = context.Barrier(WORKERS)
    failures = context.Queue()
    processes = [
        context.Process(target=_worker, args=(where, i, barrier, failures)) for i in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    found = []
    while not failures.empty():
        found.append(failures.get())
    assert found == []
    assert [p.exitcode for p in processes] == [0] * WORKERS


def _assert_every_change_once(ledger: Ledger) -> None:
    [entry] = ledger.entries()
    assert (entry.agent, entry.active_version, entry.level) == ("shared", "v1", "approval")
    events = ledger.events("shared")
    kinds = [e.kind for e in events]
    calls = WORKERS * ROUNDS
    rollbacks = sum((i + j) % 2 for i in range(WORKERS) for j in range(ROUNDS))
    assert kinds.count("register") == 1, "one registration, however many raced"
    assert kinds.count("rollback") == rollbacks
    assert kinds.count("pass") == calls - rollbacks
    assert kinds.count("incident_open") == 1
    assert kinds.count("incident_close") == 1, "closed once; the other closers found it closed"
    assert len(events) == 1 + calls + 2
    runs = sorted(e.detail["run_id"] for e in events if e.kind in ("rollback", "pass"))
    assert len(runs) == len(set(runs)) == calls
    [incident] = ledger.incidents("shared")
    assert incident.status == "closed"
    assert incident.runs == calls, "every breach counted on the one incident, none twice"


def test_processes_share_a_sqlite_ledger(tmp_path: Path) -> None:
    where = str(tmp_path / "ledger.sqlite")
    _run_workers(where)
    _assert_every_change_once(Ledger(where))


@pytest.mark.server
def test_processes_share_a_postgres_ledger(postgres_db: str) -> None:
    _run_workers(postgres_db)
    ledger = Ledger(postgres_db)
    assert ledger._engine.dialect.name == "postgresql"
    _assert_every_change_once(ledger)


@pytest.mark.server
def test_postgres_ledger_round_trip(postgres_db: str) -> None:
    ledger = Ledger(postgres_db)
    entry, notes = ledger.sync("a", "v2", "constrained", "v1", "policies/a.yaml")
    assert (entry.active_version, entry.level, entry.last_good_version) == (
        "v2",
        "constrained",
        "v1",
    )
    assert notes
    update = ledger.record_breach("a", ["leak"], "critical", "run-1", "constrained")
    assert update.opened
    assert update.page
    again = ledger.record_breach("a", ["leak"], "critical", "run-2", "constrained")
    assert not again.page
    assert again.incident.id == update.incident.id
    _, after = ledger.rollback("a", "approval", "leak", "run-2")
    assert (after.active_version, after.level) == ("v1", "approval")
    [closed] = ledger.close_incidents("a", "run-3", "constrained")
    assert closed.status == "closed"
    assert ledger.open_incident("a") is None
    assert [e.kind for e in ledger.events("a")] == [
        "register",
        "incident_open",
        "rollback",
        "incident_close",
    ]


def test_ledger_selection_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMPACTGATE_LEDGER_URL", raising=False)
    monkeypatch.delenv("IMPACTGATE_LEDGER", raising=False)
    results = tmp_path / "results"
    assert ledger_for(results).path == results / "ledger.sqlite", "embedded default unchanged"
    assert existing_ledger(tmp_path / "elsewhere") == (
        None,
        f"no ledger at {tmp_path}/elsewhere/ledger.sqlite",
    )
    with pytest.raises(UserError, match="IMPACTGATE_LEDGER_URL"):
        ledger_for("s3://bucket/results")
    url = f"sqlite:///{tmp_path}/shared.sqlite"
    monkeypatch.setenv("IMPACTGATE_LEDGER_URL", url)
    assert ledger_for("s3://bucket/results").url == url
    assert ledger_path(results) is None
    monkeypatch.setenv("IMPACTGATE_LEDGER_URL", "not-a-url")
    with pytest.raises(UserError, match="not a database URL"):
        ledger_for(results)


@pytest.mark.server
def test_cli_ledger_option_selects_postgres(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from flows.cli.main import cli

    monkeypatch.delenv("IMPACTGATE_LEDGER_URL", raising=False)
    Ledger(postgres_db).sync("shared-agent", "v3", "approval", "v2", "policies/shared-agent.yaml")
    # The option writes the process environment; monkeypatch restores it after the test.
    monkeypatch.setenv("IMPACTGATE_LEDGER_URL", "")
    result = CliRunner().invoke(
        cli,
        ["--ledger", postgres_db, "status", "--json", "--results", str(tmp_path / "results")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["agents"]
    assert (row["agent"], row["active_version"], row["level"]) == ("shared-agent", "v3", "approval")
    assert not (tmp_path / "results" / "ledger.sqlite").exists()
