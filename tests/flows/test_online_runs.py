"""Production runs through the flows: ``impactgate run --source``, the nightly, promotions."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from evals.store import ResultsStore
from evals.telemetry import TelemetryMasker, ingest
from flows.cli.main import cli
from tests.helpers import CONTRACT, make_project
from tests.online_traces import UNTIL, Trip, write_traces

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _project(tmp: Path, **production: Any) -> Path:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["evals"]["production"] = {"n": 6, "window": "1d", "coverage": False, **production}
    data["autonomy"]["level"] = "approval"
    data["autonomy"]["levels"] = {
        "approval": {"gates": {"policy_violation_rate": {"max": 0.4}}},
        "constrained": {"gates": {"policy_violation_rate": {"max": 0.3}}},
    }
    data["autonomy"]["rollback"]["metrics"] = []
    path = make_project(tmp, data, leak_every=0)
    shutil.copy(
        ROOT / "policies" / "rules" / "trajectory.yaml",
        tmp / "policies" / "rules" / "trajectory.yaml",
    )
    return path


def _traces(tmp: Path) -> Path:
    results = tmp / "results"
    trips = [Trip(f"When is refund {i} paid?") for i in range(8)] + [
        Trip("Charged twice?", error=True)
    ]
    ingest(
        [write_traces(tmp / "traces.jsonl", "tiny-agent", trips)],
        results,
        masking=TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"]),
    )
    return results


@pytest.mark.usefixtures("prefect_harness")
def test_run_does_the_golden_run_then_the_production_run(tmp_path: Path) -> None:
    _project(tmp_path)
    results = _traces(tmp_path)
    code, out, err = invoke(
        "run",
        "--policies",
        str(tmp_path / "policies"),
        "--results",
        str(results),
        "--until",
        UNTIL.strftime("%Y-%m-%dT%H:%M"),
        "--json",
    )
    assert code == 0, err
    golden, production = json.loads(out)["runs"]
    assert (golden["source"], production["source"]) == ("golden", "production")
    assert production["production"]["traces"] == 9
    assert production["production"]["sampled"] == 6
    assert production["production"]["forced"] == 1
    assert production["cases"] == 7
    rate = {m["metric"]: m for m in production["metrics"]}["error_rate"]
    assert rate["value"] == pytest.approx(1 / 9)
    runs = ResultsStore(results).runs("tiny-agent")
    assert sorted(r.source for r in runs) == ["golden", "production"]

    code, out, err = invoke(
        "run",
        "--policies",
        str(tmp_path / "policies"),
        "--results",
        str(results),
        "--source",
        "production",
        "--until",
        UNTIL.strftime("%Y-%m-%d"),
    )
    assert code == 0, err
    assert "tiny-agent (production)" in out
    assert "7 traces judged" in out
    assert "7 from earlier runs" in out, out


def test_run_source_production_without_a_block_fails_before_prefect(tmp_path: Path) -> None:
    make_project(tmp_path)
    code, _, err = invoke("run", "--policies", str(tmp_path / "policies"), "--source", "production")
    assert code == 2
    assert "evals.production: no production block" in err


@pytest.mark.usefixtures("prefect_harness")
def test_a_promotion_to_a_level_needing_production_evidence_without_any_is_refused(
    tmp_path: Path,
) -> None:
    from flows import run_outcome
    from flows.promotion import promotion

    contract = _project(tmp_path, required_from="constrained")
    state = promotion(str(contract), "constrained", str(tmp_path / "results"), return_state=True)
    assert state.is_failed()
    decision = run_outcome(state)
    assert decision["kind"] == "promotion_failed"
    assert "production evidence fail" in decision["reason"]
    assert "no production trace of 'tiny-agent'" in decision["reason"]
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    assert data["evals"]["production"]["required_from"] == "constrained"


def test_golden_suggest_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    _project(tmp_path)
    out = tmp_path / "suggested.jsonl"
    out.write_text('{"id": "reviewed by hand"}\n', encoding="utf-8")
    args = ["--policies", str(tmp_path / "policies"), "--results", str(tmp_path / "results")]
    code, _, err = invoke("golden", "suggest", "tiny-agent", "--out", str(out), *args)
    assert code == 2
    assert "--out: already exists; choose another name, or add --force" in err
    assert out.read_text(encoding="utf-8") == '{"id": "reviewed by hand"}\n'


@pytest.mark.model
def test_golden_suggest_finds_the_questions_the_golden_set_lacks(tmp_path: Path) -> None:
    _project(tmp_path)
    results = tmp_path / "results"
    refunds = [Trip(f"question {i}: when is my refund paid?") for i in range(1, 13)]
    moves = [
        Trip(f"How do I change the delivery address for order {i}?", passages=[]) for i in range(6)
    ]
    ingest(
        [write_traces(tmp_path / "traces.jsonl", "tiny-agent", refunds + moves)],
        results,
        masking=TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"]),
    )
    dataset = tmp_path / "datasets" / "tiny-agent" / "cases.jsonl"
    args = ["--policies", str(tmp_path / "policies"), "--results", str(results)]
    code, _, err = invoke("golden", "suggest", "tiny-agent", "--out", str(dataset), *args)
    assert code == 2
    assert "suggestions are never written into a dataset" in err
    out = tmp_path / "suggested.jsonl"
    code, printed, err = invoke(
        "golden", "suggest", "tiny-agent", "--out", str(out), "--until", "2026-12-01", *args
    )
    assert code == 0, err
    assert "golden_coverage 0.667" in printed
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows
    assert "delivery address" in rows[0]["input"]
    assert rows[0]["metadata"]["cluster_size"] == 6
    assert len(rows[0]["metadata"]["trace_ids"]) >= 1
    code, printed, err = invoke(
        "golden", "coverage", "tiny-agent", "--until", "2026-12-01", "--json", *args
    )
    assert code == 0, err
    coverage = json.loads(printed)
    assert coverage["golden_coverage"] == pytest.approx(12 / 18)
    assert coverage["n"] == 18
    assert coverage["uncovered_clusters"][0]["size"] == 6
    # the dataset is untouched
    assert next(json.loads(line)["id"] for line in dataset.read_text().splitlines()) == "c1"
    assert "suggested" not in dataset.read_text(encoding="utf-8")


@pytest.mark.model
def test_an_example_agent_gets_a_golden_run_and_a_production_run_from_its_telemetry(
    tmp_path: Path,
) -> None:
    """account-support's generated telemetry (examples/telemetry) judged like its golden set."""
    from datetime import UTC, date, datetime

    from evals.runs import RunSession
    from examples.telemetry import generate

    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(
        ROOT / "datasets" / "account-support", tmp_path / "datasets" / "account-support"
    )
    contract = tmp_path / "policies" / "account-support.yaml"
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    data["evals"]["production"] = {"n": 40, "window": "7d", "coverage": True}
    # The files below, not the contract's generator (which writes the history up to today:
    # mixed in, the traces judged would change with the day the test runs).
    data["telemetry"]["sources"] = ["telemetry/*"]
    contract.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    results = tmp_path / "results"
    files = generate("account-support", tmp_path / "telemetry", end=date(2026, 12, 1), days=28)
    assert ingest(files, results, policies=tmp_path / "policies").ok
    until = datetime(2026, 12, 1, tzinfo=UTC)
    with RunSession.open(contract, str(results), use_cache=False) as session:
        golden = session.run(act=False).result.record
    with RunSession.open_production(contract, str(results), until=until) as session:
        production = session.run(act=False).result.record
    assert (golden.source, production.source) == ("golden", "production")
    account = production.production
    assert account is not None
    assert account["traces"] > 100
    assert account["sampled"] == 40
    assert account["skipped"] == {}
    assert production.metrics["faithfulness"].n == 40
    assert production.metrics["error_rate"].n == account["traces"]
    coverage = production.metrics["golden_coverage"]
    assert coverage.measured
    assert coverage.n == account["traces"]
    assert account["drift"]["golden_run_id"] == golden.run_id
    assert {row["metric"] for row in account["drift"]["metrics"]} >= {"faithfulness"}


@pytest.mark.model
def test_traces_without_passages_are_not_judged_for_grounding_but_count_for_the_rest(
    tmp_path: Path,
) -> None:
    from evals.runs import RunSession

    contract = _project(tmp_path, n=20)
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    data["evals"]["suites"] = ["grounding", "hallucination", "policy", "cost", "latency"]
    contract.write_text(yaml.safe_dump(data), encoding="utf-8")
    trips = [Trip(f"When is refund {i} paid?") for i in range(6)]
    trips += [Trip(f"What is your phone number {i}?", passages=[]) for i in range(3)]
    results = tmp_path / "results"
    ingest(
        [write_traces(tmp_path / "traces.jsonl", "tiny-agent", trips)],
        results,
        masking=TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"]),
    )
    with RunSession.open_production(contract, str(results), until=UNTIL) as session:
        outcome = session.run(act=False)
    record = outcome.result.record
    assert record.production is not None
    assert record.production["not_judged"] == {"grounding": 3, "hallucination": 3}
    assert record.metrics["faithfulness"].n == 6
    assert record.metrics["faithfulness"].n_errors == 0
    assert record.metrics["hallucination_rate"].n == 6
    assert record.metrics["policy_violation_rate"].n == 9
    assert record.metrics["latency_p50_s"].n == 9
    skipped = [c.scores["faithfulness"] for c in outcome.result.cases if not c.case.contexts]
    assert len(skipped) == 3
    assert all(s.is_skipped for s in skipped)
    assert skipped[0].explanation == (
        "not judged: the trace retrieved no passages to judge grounding on"
    )
    assert any("3 trace(s) retrieved no passages" in note for note in outcome.notes)


def test_a_production_run_holds_the_levels_telemetry_gates_to_the_measured_workflow(
    tmp_path: Path,
) -> None:
    """A level gating a workflow metric is judged on the scorecard in production runs too,
    never on 'no data'."""
    from datetime import UTC, datetime

    from evals.gates import Verdict
    from evals.runs import RunSession
    from tests.scorecard_data import Item, days_ago, write_telemetry

    contract = _project(tmp_path)
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    data["autonomy"]["levels"]["approval"]["gates"]["escalation_rate"] = {"max": 0.3}
    data["telemetry"] = {"sources": ["telemetry/*"]}
    contract.write_text(yaml.safe_dump(data), encoding="utf-8")
    now = datetime.now(UTC)
    items = [
        Item(f"T{i}", days_ago(now, i % 20), escalated=i % 2 == 0) for i in range(200)
    ]  # half of the handled items are escalated: over the gate
    write_telemetry(tmp_path / "telemetry", "tiny-agent", items)
    results = _traces(tmp_path)
    with RunSession.open_production(contract, str(results), until=UNTIL) as session:
        outcome = session.run(act=False)
    gate = {g.metric: g for g in outcome.result.gates}["escalation_rate"]
    assert gate.observed is not None
    assert gate.observed.value == pytest.approx(0.5)
    assert gate.verdict == Verdict.FAIL
    assert outcome.scorecard is None  # the golden run shows the scorecard, once
