"""Streamed runs: a dataset walked in batches, stored as it goes, committed whole at the end.

A large dataset is not held in memory (``evals.dataset.KEEP_IN_MEMORY``); these tests set
that limit to nothing and use batches of three cases, so the tiny project streams like a
100,000-case one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import evals.dataset._load as dataset_module
from evals.contract import load_contract
from evals.dataset import load_dataset
from evals.errors import UserError
from evals.report import (
    failing_cases,
    first_failing_cases,
    run_summary_markdown,
    stored_failing_cases,
)
from evals.runs import RunSession, RunTally, case_results
from evals.scorers import Score
from evals.store import ResultsStore, RunJournal, journal_dir
from evals.targets import Output, build_target
from tests.evals.test_session import Killed, make_project
from tests.helpers import CASES, write_jsonl


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dataset is read again in batches instead of being held."""
    monkeypatch.setattr(dataset_module, "KEEP_IN_MEMORY", 0)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.usefixtures("streamed")
def test_a_streamed_run_measures_and_stores_what_an_in_memory_run_does(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with RunSession.open(project, None, version="v2") as session:
        assert not session.plan.dataset.in_memory
        outputs = session.generate()
        held = session.summarize(outputs, session.score(session.cases, outputs))

    results = tmp_path / "results"
    with RunSession.open(project, str(results)) as session:
        streamed = session.stream(batch=3)
    record = streamed.record
    assert streamed.cases == [], "no case is kept"
    assert (record.version, record.n_cases, record.verdict) == ("v2", 8, held.record.verdict)
    assert record.metrics.keys() == held.record.metrics.keys()
    for name, metric in held.record.metrics.items():
        assert record.metrics[name] == metric, name
    assert streamed.tally.called == 8
    assert streamed.tally.values == held.tally.values

    store = ResultsStore(results)
    assert store.runs() == [record]
    stored = store.samples(record)
    expected = [replace(s, run_id=record.run_id) for s in held.samples()]
    assert stored == expected, "the same rows, in case order"
    [samples_file] = (results / "samples").rglob("*.parquet")
    assert pq.ParquetFile(samples_file).metadata.num_row_groups == 3, "one row group a batch"
    assert RunJournal.in_progress(journal_dir(str(results))) == [], "the journal goes at commit"


@pytest.mark.usefixtures("streamed")
def test_a_run_that_stops_half_way_leaves_nothing_and_resumes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    results = tmp_path / "results"
    session = RunSession.open(project, str(results), trigger="nightly")
    batches = 0

    def submit(cases: object, outputs: object) -> object:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise Killed  # the process dies while the second batch is scored
        scores = session.score(cases, outputs)  # type: ignore[arg-type]
        return lambda: scores

    with pytest.raises(Killed):
        session.stream(submit=submit, batch=3)  # type: ignore[arg-type]
    session.close()
    assert ResultsStore(results).runs() == []
    assert not [f for f in _files(results) if f.startswith("samples")], "no file, no temporary"

    with RunSession.open(project, str(results), resume=session.header.run_id) as resumed:
        assert len(resumed.resumed_ids) == 6, "both batches generated were journaled"
        outcome = resumed.run(act=False)
    record = outcome.result.record
    assert (record.run_id, record.n_cases, record.n_resumed) == (session.header.run_id, 8, 6)
    assert outcome.called == 2, "only the cases the journal lacked were called"
    assert {s.case_id for s in ResultsStore(results).samples(record)} == {c["id"] for c in CASES}


@pytest.mark.usefixtures("streamed")
def test_a_dataset_that_changes_under_a_run_stops_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", CASES)
    dataset = load_dataset(path)
    assert (len(dataset), dataset.in_memory) == (8, False)
    batches = dataset.batches(3)
    assert [c["id"] for c in CASES[:3]] == [c.id for c in next(batches)]
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "late", "input": "added while the run read"}) + "\n")
    with pytest.raises(UserError, match="changed while a run was reading it"):
        list(batches)


@pytest.mark.usefixtures("streamed")
def test_duplicate_ids_are_found_in_a_dataset_too_large_to_hold(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [*CASES, CASES[2]])
    with pytest.raises(UserError) as caught:
        load_dataset(path)
    assert "row 9 (line 9): column 'id'" in str(caught.value)
    assert "duplicate 'c3', first at row 3 (line 3)" in str(caught.value)


def test_recorded_outputs_in_the_dataset_hash_the_same_in_any_order(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    contract = load_contract(project)
    spec = contract.evals.target.model_copy(update={"outputs": None, "version": "v1"})
    contract = contract.model_copy(
        update={"evals": contract.evals.model_copy(update={"target": spec})}
    )
    rows = [{**c, "output": f"Refunds take 5 days ({c['id']})."} for c in CASES]

    def version(cases: list[dict[str, object]]) -> str:
        path = write_jsonl(tmp_path / "cases.jsonl", cases)
        return build_target(contract, load_dataset(path)).version().hash

    first = version(rows)
    assert version(rows[::-1]) == first, "the order of the rows is not the version"
    changed = [*rows[:-1], {**rows[-1], "output": "Refunds take 6 days."}]
    assert version(changed) != first, "an output is"


def test_a_failed_output_is_counted_and_spends_the_error_budget(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with RunSession.open(project, None) as session:
        cases = session.cases[:2]
        outputs = [
            Output(cases[0].id, "Refunds take 5 days."),
            Output(cases[1].id, None, error="503"),
        ]
        scores = {name: [Score.skipped("not scored here")] * 2 for name in session.plan.scorers}
        tally = RunTally(tuple(session.contract.evals.suites))
        tally.add(case_results(session.contract, cases, outputs, scores))
    assert (tally.cases, tally.failed, tally.called) == (2, 1, 2)
    assert tally.notes() == [
        "1 of 2 cases got no output (they count against the error budget); first: c2: 503"
    ]
    assert tally.metric_values("error_rate") == [0.0, 1.0]
    assert tally.metric_values("policy_violation_rate") == [], "skipped cases are left out"


def test_a_run_summary_reads_the_failing_cases_a_batch_at_a_time(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", leak_every=3)
    results = tmp_path / "results"
    with RunSession.open(project, str(results)) as session:
        record = session.stream(batch=3).record
    store = ResultsStore(results)
    every = failing_cases(record, store.samples(record))
    assert len(every) == 2, "c3 and c6 leak"
    count, first = first_failing_cases(record, store.iter_samples(record, batch_size=5), 1)
    assert (count, first) == (2, every[:1]), "a case split across batches is one case"
    summary = run_summary_markdown(results, record.run_id, policies=project.parent, max_cases=1)
    assert "**Failing cases (2):**" in summary
    assert "- … and 1 more in the report" in summary


def test_a_summary_counts_on_the_light_columns_and_reads_only_the_cases_it_shows(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p", leak_every=3)
    results = tmp_path / "results"
    with RunSession.open(project, str(results)) as session:
        record = session.stream(batch=3).record
    store = ResultsStore(results)
    light = [s for batch in store.iter_samples(record, light=True) for s in batch]
    assert light
    assert all(s.evidence is None and s.output is None for s in light)
    assert [(s.case_id, s.metric, s.value, s.passed) for s in light] == [
        (s.case_id, s.metric, s.value, s.passed) for s in store.samples(record)
    ]
    only = [s.case_id for batch in store.iter_samples(record, case_ids={"c6"}) for s in batch]
    assert only
    assert set(only) == {"c6"}
    every = failing_cases(record, store.samples(record))
    assert stored_failing_cases(store, record, 1) == (2, every[:1]), "shown whole, with evidence"
    assert stored_failing_cases(store, record, 0) == (2, [])
