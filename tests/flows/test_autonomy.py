"""Autonomy moves only through gates: promotion with approval, rollback by hand, serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evals.store import Ledger, ResultsStore, ledger_for
from flows.cli.main import cli
from tests.helpers import CONTRACT, make_project

pytestmark = pytest.mark.usefixtures("prefect_harness")

OBSERVATIONS = (
    "metric,value,n,low,high,window\n"
    "automation_rate,0.3,400,,,2026-11\n"
    "escalation_rate,0.5,400,,,2026-11\n"
    "rework_rate,0.02,400,,,2026-11\n"
    "cycle_time,3.5,,3.1,4.0,2026-11\n"
)


def project(tmp_path: Path, **autonomy: Any) -> Path:
    data = json.loads(json.dumps(CONTRACT))
    data["evals"]["target"]["version"] = "v1"
    data["autonomy"].update({"level": "approval", **autonomy})
    data["autonomy"]["levels"]["constrained"]["human_approval"] = True
    data["workflow"]["observations"] = "datasets/tiny-agent/workflow.csv"
    contract = make_project(tmp_path / "project", data)
    (tmp_path / "project" / "datasets" / "tiny-agent" / "workflow.csv").write_text(OBSERVATIONS)
    return contract


def promote(contract: Path, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        cli,
        [
            "promote",
            "tiny-agent",
            "--to",
            "constrained",
            "--policies",
            str(contract.parent),
            "--results",
            str(tmp_path / "results"),
            "--json",
            *args,
        ],
        catch_exceptions=False,
    )
    return result.exit_code, json.loads(result.stdout)


def test_a_promotion_that_passes_every_gate_waits_for_and_records_its_approver(
    tmp_path: Path,
) -> None:
    contract = project(tmp_path)
    code, decision = promote(
        contract,
        tmp_path,
        "--approve",
        "--approver",
        "ann@example.test",
        "--reason",
        "clean for a month",
    )
    assert code == 0
    assert decision["kind"] == "promote"
    assert decision["approved_by"] == "ann@example.test"
    assert (decision["level_before"], decision["level_after"]) == ("approval", "constrained")
    assert {g["verdict"] for g in decision["gates"]} == {"pass"}
    assert any(g["metric"] == "workflow.rework_rate" for g in decision["gates"])
    entry = ledger_for(str(tmp_path / "results")).get("tiny-agent")
    assert entry is not None
    assert entry.level == "constrained"
    [row] = ResultsStore(tmp_path / "results").decisions("tiny-agent")
    assert (row.kind, row.approved_by) == ("promote", "ann@example.test")


def test_a_rejected_promotion_changes_nothing(tmp_path: Path) -> None:
    contract = project(tmp_path)
    code, decision = promote(
        contract,
        tmp_path,
        "--reject",
        "--approver",
        "bob@example.test",
        "--reason",
        "not during the sale",
    )
    assert code == 1
    assert decision["kind"] == "promotion_rejected"
    assert decision["reason"] == "rejected by bob@example.test: not during the sale"
    entry = ledger_for(str(tmp_path / "results")).get("tiny-agent")
    assert entry is not None
    assert entry.level == "approval"


def test_an_inconclusive_gate_fails_the_promotion_without_asking_anyone(tmp_path: Path) -> None:
    contract = project(tmp_path, min_samples=30)
    code, decision = promote(contract, tmp_path, "--approve", "--approver", "ann", "--reason", "x")
    assert code == 1
    assert decision["kind"] == "promotion_failed"
    assert "inconclusive" in decision["reason"]
    assert decision["approved_by"] is None
    entry = ledger_for(str(tmp_path / "results")).get("tiny-agent")
    assert entry is not None
    assert entry.level == "approval"


def test_a_human_owned_level_needs_an_answer_when_nobody_can_be_asked(tmp_path: Path) -> None:
    contract = project(tmp_path)
    result = CliRunner().invoke(
        cli,
        [
            "promote",
            "tiny-agent",
            "--to",
            "constrained",
            "--policies",
            str(contract.parent),
            "--results",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2
    assert "'constrained' needs an approver" in result.stderr


def test_a_person_rolls_back_and_status_shows_it(tmp_path: Path) -> None:
    contract = project(tmp_path)
    results = tmp_path / "results"
    Ledger(results / "ledger.sqlite").sync(
        "tiny-agent", "v2", "constrained", "v1", "policies/tiny-agent.yaml"
    )
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "rollback",
            "tiny-agent",
            "--reason",
            "bad answers",
            "--policies",
            str(contract.parent),
            "--results",
            str(results),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "v2 → v1" in result.stdout
    status = json.loads(runner.invoke(cli, ["status", "--results", str(results), "--json"]).stdout)
    [agent] = status["agents"]
    assert agent["active_version"] == "v1"
    assert agent["latest_decision"]["kind"] == "rollback"
    unknown = runner.invoke(
        cli,
        [
            "rollback",
            "tiny-agent",
            "--policies",
            str(contract.parent),
            "--results",
            str(tmp_path / "empty"),
        ],
    )
    assert unknown.exit_code == 2
    assert "not in the ledger yet" in unknown.stderr


def test_an_event_channel_emits_a_prefect_event(tmp_path: Path) -> None:
    from flows import evaluate_agent

    data = json.loads(json.dumps(CONTRACT))
    data["autonomy"]["escalation"] = {"owner": "o", "channels": [{"kind": "event"}]}
    contract = make_project(tmp_path / "project", data)
    summary = evaluate_agent(str(contract), str(tmp_path / "results"), "manual")
    assert summary["action"] == "rollback"
    assert (
        "event impactgate.rollback on impactgate.agent.tiny-agent: emitted"
        in summary["decision"]["notifications"]
    )


def test_serve_builds_the_three_deployments(tmp_path: Path) -> None:
    from flows.cli.serve import build_deployments

    contract = project(tmp_path)
    deployments = build_deployments(str(contract.parent), str(tmp_path / "results"))
    names = [d.name for d in deployments]  # type: ignore[attr-defined]
    assert names == ["nightly", "promotion", "ci-gate"]
    nightly = deployments[0]
    assert nightly.parameters["agents"] == ["tiny-agent"]  # type: ignore[attr-defined]
    assert nightly.schedules[0].schedule.cron == "0 2 * * *"  # type: ignore[attr-defined]
