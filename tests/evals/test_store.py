"""The results store and the ledger: what is read back is exactly what committed."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from evals.contract import load_contract
from evals.decisions import Decision
from evals.runs import RunResult, evaluate
from evals.store import Ledger, NoGoodVersion, ResultsStore
from tests.helpers import make_project


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    contract = load_contract(make_project(tmp_path_factory.mktemp("project")))
    return evaluate(contract)


def test_run_round_trip_with_hive_partitions(tmp_path: Path, result: RunResult) -> None:
    store = ResultsStore(tmp_path / "results")
    store.write_run(result)
    runs, samples = store.runs(), store.samples()
    info = result.info
    date = info.started_at.strftime("%Y-%m-%d")
    assert (
        tmp_path
        / "results"
        / "runs"
        / f"agent={info.agent}"
        / f"date={date}"
        / f"{info.run_id}.parquet"
    ).is_file()
    assert set(runs.column("agent").to_pylist()) == {info.agent}
    assert set(runs.column("metric").to_pylist()) >= {
        "faithfulness",
        "hallucination_rate",
        "error_rate",
    }
    assert samples.num_rows == len(result.cases) * 5
    assert set(samples.column("metric").to_pylist()) == {
        "faithfulness", "hallucination", "policy_violation", "cost", "latency",
    }  # fmt: skip


def test_runs_never_overwrite_each_other(tmp_path: Path, result: RunResult) -> None:
    store = ResultsStore(tmp_path)
    store.write_run(result)
    from dataclasses import replace

    second = replace(result, info=replace(result.info, run_id=result.info.run_id + "-2"))
    store.write_run(second)
    assert len(set(store.runs().column("run_id").to_pylist())) == 2


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
        store.write_run(result)
    monkeypatch.undo()
    assert store.samples().num_rows == 0
    assert store.runs().num_rows == 0
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
        store.write_run(result)
    assert any(tmp_path.rglob("samples/**/*.parquet")), "samples were written..."
    fresh = ResultsStore(tmp_path)
    assert fresh.samples().num_rows == 0, "...but a run without its runs rows is never read back"
    assert fresh.runs().num_rows == 0


def test_decisions_are_appended_in_time_order(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.write_decisions([Decision("a", "escalate", "first", "test")])
    store.write_decisions(
        [Decision("a", "rollback", "second", "test", metrics=["policy_violation_rate"])]
    )
    table = store.decisions("a")
    assert table.column("kind").to_pylist() == ["escalate", "rollback"]
    assert table.column("metrics").to_pylist()[1] == ["policy_violation_rate"]


def test_empty_store_reads_as_empty_tables(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "nothing-yet")
    assert store.runs().num_rows == store.samples().num_rows == store.decisions().num_rows == 0


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
