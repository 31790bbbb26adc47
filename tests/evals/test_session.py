"""The run session: everything a run decides, in the engine, without Prefect.

The project here gates on policy, cost and latency only: no model loads, so these tests run
in the fast subset and cover what the evaluate-agent flow does around its tasks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from evals.contract import load_contract
from evals.errors import UserError
from evals.runs import RunSession, evaluate
from evals.scorers import Score
from evals.store import Output, ResultsStore, RunJournal, journal_dir, ledger_for
from tests.helpers import CONTRACT
from tests.helpers import make_project as make_full_project


def make_project(tmp: Path, leak_every: int = 2) -> Path:
    """The test project without the grounding suites (so without the embedding model)."""
    contract: dict[str, Any] = copy.deepcopy(CONTRACT)
    contract["evals"]["suites"] = ["policy", "cost", "latency"]
    contract["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    return make_full_project(tmp, contract, leak_every=leak_every)


class Killed(Exception):
    """Stands in for a process killed mid-run."""


def test_a_leaking_version_is_committed_rolled_back_and_recorded(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    results = str(tmp_path / "results")
    with RunSession.open(contract, results, trigger="nightly") as session:
        assert session.notes == ["registered at constrained on v2"]
        outcome = session.run()
    record = outcome.result.record
    assert (record.version, record.level, record.verdict) == ("v2", "constrained", "fail")
    assert outcome.decision is not None
    assert outcome.decision.kind == "rollback"
    assert outcome.level_after == "approval"
    store = ResultsStore(results)
    assert store.runs() == [record]
    assert [d.kind for d in store.decisions()] == ["rollback"]
    entry = ledger_for(results).get("tiny-agent")
    assert entry is not None
    assert (entry.active_version, entry.level) == ("v1", "approval")
    assert RunJournal.in_progress(journal_dir(results)) == [], "the journal goes at commit"
    summary = outcome.summary()
    assert summary["action"] == "rollback"
    assert summary["level_after"] == "approval"
    assert {m["metric"] for m in summary["metrics"]} >= {"policy_violation_rate", "error_rate"}

    # The next session evaluates the re-pinned version at the demoted level: it passes, and
    # the rollback incident stays open until the agent earns its level back.
    with RunSession.open(contract, results, trigger="nightly") as session:
        again = session.run()
    assert (again.result.record.version, again.result.record.level) == ("v1", "approval")
    assert again.result.record.verdict == "pass"
    assert again.decision is None, "passing at approval does not close a constrained incident"
    [incident] = ledger_for(results).incidents("tiny-agent", open_only=True)
    assert incident.level == "constrained"


def test_a_healthy_run_with_nothing_to_recover_takes_no_action(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", leak_every=0)
    results = str(tmp_path / "results")
    with RunSession.open(project, results) as session:
        action = session.choose_action(session.commit(*_scored(session)))
    assert (action.kind, action.why) == ("none", "every gate passes; no open incident to close")


def _scored(session: RunSession) -> tuple[list[Output], dict[str, list[Score]]]:
    outputs = session.generate()
    return outputs, session.score(session.cases, outputs)


def test_an_interrupted_session_resumes_under_its_own_id(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    results = str(tmp_path / "results")
    session = RunSession.open(project, results, trigger="nightly")
    run_id = session.header.run_id

    def kill_after_three(done: int) -> None:
        if done >= 3:
            raise Killed

    with pytest.raises(Killed):
        session.generate(progress=kill_after_three)
    session.close()
    assert [h.run_id for h in RunJournal.in_progress(journal_dir(results))] == [run_id]

    with RunSession.open(project, results, resume=run_id) as resumed:
        assert resumed.header.run_id == run_id
        assert resumed.header.trigger == "nightly", "a resumed run keeps its trigger"
        assert len(resumed.resumed_ids) >= 3
        outcome = resumed.run()
    assert outcome.result.record.run_id == run_id
    assert outcome.result.record.n_resumed == len(resumed.resumed_ids)
    with pytest.raises(UserError, match="already committed"):
        RunSession.open(project, results, resume=run_id)


def test_evaluate_stores_nothing_and_leaves_the_ledger_alone(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path / "p"))
    result = evaluate(contract, version="v1")
    assert result.record.version == "v1"
    assert not (tmp_path / "p" / "results").exists()
    assert not (tmp_path / "results").exists()


def test_a_ci_candidate_does_not_touch_the_ledger(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    results = str(tmp_path / "results")
    with RunSession.open(
        project, results, trigger="ci", sync_ledger=False, journal=False, level="approval"
    ) as session:
        outcome = session.run()
    assert outcome.decision is None
    assert outcome.result.record.trigger == "ci"
    assert ledger_for(results).entries() == [], "a candidate is not a deployment"
    assert ResultsStore(results).runs() == [outcome.result.record]


def test_recordings_without_latency_spend_no_error_budget(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", leak_every=0)
    outputs = project.parents[1] / "datasets" / "tiny-agent" / "outputs.jsonl"
    rows = [json.loads(line) for line in outputs.read_text().splitlines()]
    outputs.write_text("".join(json.dumps({**r, "latency_s": None}) + "\n" for r in rows))
    with RunSession.open(project, str(tmp_path / "results")) as session:
        record = session.run(act=False).result.record
    assert record.metrics["error_rate"].value == 0.0, "every output exists"
    p50 = record.metrics["latency_p50_s"]
    assert (p50.value, p50.verdict) == (None, "fail"), "missing data never passes"
    assert "not measured" in (p50.reason or "")
