"""The results store and the ledger: what is read back is exactly what committed."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from evals.contract import load_contract
from evals.runs import RunResult, evaluate
from evals.store import Decision, Ledger, NoGoodVersion, ResultsStore
from tests.helpers import make_project

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    contract = load_contract(make_project(tmp_path_factory.mktemp("project")))
    return evaluate(contract)


def test_run_round_trip_with_hive_partitions(tmp_path: Path, result: RunResult) -> None:
    store = ResultsStore(tmp_path / "results")
    store.write_run(result.record, result.samples())
    runs = store.runs()
    record = result.record
    date = record.started_at.strftime("%Y-%m-%d")
    assert (
        tmp_path
        / "results"
        / "runs"
        / f"agent={record.agent}"
        / f"date={date}"
        / f"{record.run_id}.parquet"
    ).is_file()
    assert runs == [record], "a run reads back exactly as it was written"
    assert set(runs[0].metrics) >= {"faithfulness", "hallucination_rate", "error_rate"}
    samples = store.samples(runs)
    assert len(samples) == len(result.cases) * 5
    assert samples == result.samples()
    assert {s.metric for s in samples} == {
        "faithfulness", "hallucination", "policy_violation", "cost", "latency",
    }  # fmt: skip
    assert store.table("samples").num_rows == len(samples), "the raw Arrow view for analysis"


def test_runs_never_overwrite_each_other(tmp_path: Path, result: RunResult) -> None:
    store = ResultsStore(tmp_path)
    store.write_run(result.record, result.samples())
    from dataclasses import replace

    second = replace(result.record, run_id=result.record.run_id + "-2")
    store.write_run(second, result.samples())
    assert len({r.run_id for r in store.runs()}) == 2


def test_crash_while_writing_samples_leaves_nothing_visible(
    tmp_path: Path, result: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pq.write_table

    def half_written(table, where, **kwargs):  # type: ignore[no-untyped-def]
        real(table.slice(0, 3), where, **kwargs)  # bytes land on disk under the temporary name
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_written)
    store = ResultsStore(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        store.write_run(result.record, result.samples())
    monkeypatch.undo()
    assert store.table("samples").num_rows == 0
    assert store.runs() == []
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], "the temporary file is removed on failure"


def test_crash_between_samples_and_runs_hides_the_samples(
    tmp_path: Path, result: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultsStore(tmp_path)
    real = store._write

    def crash_on_runs(table_name, *args):  # type: ignore[no-untyped-def]
        if table_name == "runs":
            raise KeyboardInterrupt  # the process is killed before the commit point
        return real(table_name, *args)

    monkeypatch.setattr(store, "_write", crash_on_runs)
    with pytest.raises(KeyboardInterrupt):
        store.write_run(result.record, result.samples())
    assert any(tmp_path.rglob("samples/**/*.parquet")), "samples were written..."
    fresh = ResultsStore(tmp_path)
    assert fresh.table("samples").num_rows == 0, "...but a run without its runs rows is never read"
    assert fresh.runs() == []
    assert fresh.samples(result.record) == [], "not even when asked for that run by name"


def test_decisions_are_appended_in_time_order(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.write_decisions([Decision("a", "escalate", "first", "test")])
    store.write_decisions(
        [Decision("a", "rollback", "second", "test", metrics=["policy_violation_rate"])]
    )
    decisions = store.decisions("a")
    assert [d.kind for d in decisions] == ["escalate", "rollback"]
    assert decisions[1].metrics == ["policy_violation_rate"]


def test_empty_store_reads_as_empty_tables(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "nothing-yet")
    assert store.runs() == store.decisions() == []
    assert store.table("samples").num_rows == 0
    assert store.run("no-such-run") is None


def test_ledger_registers_deploys_and_rolls_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    entry, notes = ledger.sync("a", "v2", "constrained", "v1", "policies/a.yaml")
    assert (entry.active_version, entry.level, entry.last_good_version) == (
        "v2",
        "constrained",
        "v1",
    )
    assert notes == ["registered at constrained on v2"]
    before, after = ledger.rollback("a", "approval", "leak")
    assert (before.active_version, after.active_version, after.level) == ("v2", "v1", "approval")
    # Idempotent: a second rollback changes nothing.
    _, again = ledger.rollback("a", "approval", "leak")
    assert (again.active_version, again.level) == ("v1", "approval")
    # The rollback holds while the contract still declares v2 ...
    entry, _ = ledger.sync("a", "v2", "constrained", "v1", "policies/a.yaml")
    assert entry.active_version == "v1"
    assert entry.level == "approval", "a contract cannot promote by editing its level"
    # ... and a newly declared version is a deployment.
    entry, notes = ledger.sync("a", "v3", "constrained", "v1", "policies/a.yaml")
    assert entry.active_version == "v3"
    assert notes == ["deployed v3 (was v1)"]
    assert [e.kind for e in ledger.events("a")] == ["register", "rollback", "rollback", "deploy"]


def test_rollback_without_a_good_version_refuses(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.sync("a", "v1", "constrained", None, "policies/a.yaml")
    with pytest.raises(NoGoodVersion, match="nothing to roll back to"):
        ledger.rollback("a", "approval", "leak")
    entry = ledger.get("a")
    assert entry is not None
    assert entry.active_version == "v1"
    assert entry.level == "constrained"


def test_record_pass_sets_last_good(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.sync("a", "v1", "approval", None, "policies/a.yaml")
    entry = ledger.record_pass("a", "v1", "run-1")
    assert (entry.last_good_version, entry.last_good_source) == ("v1", "run run-1")


def test_concurrent_writers_leave_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).sync("a", "v2", "expanded", "v1", "policies/a.yaml")
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            ledger = Ledger(path)
            for j in range(20):
                if (i + j) % 2:
                    ledger.rollback("a", "approval", f"worker {i}")
                else:
                    ledger.record_pass("a", "v1", f"run-{i}-{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ledger = Ledger(path)
    entry = ledger.get("a")
    assert entry is not None
    assert (entry.active_version, entry.level, entry.last_good_version) == ("v1", "approval", "v1")
    assert len(ledger.events("a")) == 1 + 4 * 20
