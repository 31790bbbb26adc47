"""Autonomy moves only through gates: promotion with approval, rollback by hand, serving."""

from __future__ import annotations

import contextvars
import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

from evals.store import Ledger, ResultsStore, ledger_for
from flows.cli.main import cli
from tests.helpers import (
    CONTRACT,
    http_receiver,
    make_project,
    promotable_project,
    resume_without_an_answer,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


def project(tmp_path: Path, **autonomy: Any) -> Path:
    data = json.loads(json.dumps(CONTRACT))
    data["autonomy"].update({"level": "approval", **autonomy})
    return promotable_project(tmp_path / "project", data)


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
    asked, answered = (decision["details"][k] for k in ("asked_at", "answered_at"))
    assert datetime.fromisoformat(asked) < datetime.fromisoformat(answered)
    assert decision["at"] == answered, "a decision is dated when the approver answered"
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


def test_a_promotion_that_does_not_happen_fails_and_tells_the_channels(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from flows import run_outcome
    from flows.promotion import promotion

    with http_receiver() as receiver:
        contract = project(
            tmp_path,
            min_samples=30,
            escalation={"owner": "o@example.test", "channels": [{"url": receiver.url}]},
        )
        state = promotion(
            str(contract), "constrained", str(tmp_path / "results"), return_state=True
        )
    assert state.is_failed()
    assert state.name == "NotPromoted"
    assert "inconclusive" in str(state.message)
    decision = run_outcome(state)
    assert decision["kind"] == "promotion_failed"
    assert decision["notifications"] == [f"webhook {receiver.url}: delivered (HTTP 200)"]
    [body] = receiver.bodies
    assert (body["kind"], body["to_level"], body["severity"]) == (
        "promotion_failed",
        "constrained",
        "medium",
    )
    assert "not promoted" in body["text"]
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["promotion-tiny-agent"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert f"webhook {receiver.url}: delivered" in str(artifact.data)
    assert "no channels configured" not in str(artifact.data)


def test_the_approval_form_needs_every_answer_and_describes_its_fields() -> None:
    from prefect.input.run_input import create_v2_schema

    from flows.approvals import Approval

    schema = create_v2_schema("Approval", model_base=Approval)
    assert set(schema["required"]) == {"decision", "approver", "reason"}
    assert all(field.get("description") for field in schema["properties"].values())
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]


def _start_promotion(contract: Path, results: Path) -> tuple[threading.Thread, dict[str, Any]]:
    from flows.promotion import promotion

    holder: dict[str, Any] = {}
    context = contextvars.copy_context()  # the thread sees the harness's Prefect settings

    def run() -> None:
        holder["state"] = context.run(
            promotion, str(contract), "constrained", str(results), return_state=True
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, holder


def _wait_until_waiting(agent: str, thread: threading.Thread) -> Any:
    from flows.approvals import waiting_approvals

    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        waiting = [w for w in waiting_approvals() if w.agent == agent]
        if waiting:
            return waiting[0]
        time.sleep(0.3)
    raise AssertionError(f"no promotion of {agent} started waiting")


def test_a_waiting_promotion_refuses_an_empty_answer_and_takes_impactgate_approve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    from flows import run_outcome

    contract = project(tmp_path)
    results = tmp_path / "results"
    thread, holder = _start_promotion(contract, results)
    waiting = _wait_until_waiting("tiny-agent", thread)
    assert (waiting.level_before, waiting.to_level, waiting.version) == (
        "approval",
        "constrained",
        "v1",
    )
    assert not waiting.suspended, "a run without a deployment waits in its process"

    api = str(PREFECT_API_URL.value())
    refused = resume_without_an_answer(api, waiting.run_id)
    assert refused["status"] == "REJECT"
    assert "'decision' is a required property" in refused["details"]["reason"]

    runner = CliRunner()
    monkeypatch.setenv("PREFECT_API_URL", api)
    listed = json.loads(runner.invoke(cli, ["status", "--results", str(results), "--json"]).stdout)
    [still] = [w for w in listed["waiting_approvals"] if w["agent"] == "tiny-agent"]
    assert still["run_id"] == waiting.run_id, "an empty answer leaves the run waiting"
    assert still["answer"].startswith("impactgate approve|reject tiny-agent")

    blank = runner.invoke(cli, ["approve", "tiny-agent", "--approver", " ", "--reason", "ok"])
    assert blank.exit_code == 2
    assert "tiny-agent: --approver: must not be blank" in blank.stderr
    answered = runner.invoke(
        cli,
        ["approve", "tiny-agent", "--approver", "ann@example.test", "--reason", "clean month"],
    )
    assert answered.exit_code == 0, answered.stderr
    assert "approved tiny-agent: approval → constrained on v1" in answered.stdout
    thread.join(timeout=60)
    decision = run_outcome(holder["state"])
    assert decision["kind"] == "promote"
    assert decision["reason"].endswith("approved by ann@example.test: clean month")

    again = runner.invoke(cli, ["reject", "tiny-agent", "--approver", "a", "--reason", "b"])
    assert again.exit_code == 2
    assert "no promotion of 'tiny-agent' is waiting" in again.stderr


def test_approvals_need_a_prefect_server() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(
            cli, ["approve", "tiny-agent", "--approver", "ann", "--reason", "ok"]
        )
    assert result.exit_code == 2
    assert "PREFECT_API_URL: not set" in result.stderr


def test_an_approval_for_an_agent_that_changed_while_it_waited_promotes_nothing(
    tmp_path: Path,
) -> None:
    from prefect.flow_runs import resume_flow_run

    from flows import run_outcome

    contract = project(tmp_path)
    results = tmp_path / "results"
    thread, holder = _start_promotion(contract, results)
    waiting = _wait_until_waiting("tiny-agent", thread)
    # Meanwhile another promotion took the agent to `constrained` on other evidence.
    ledger_for(str(results)).promote("tiny-agent", "constrained", "v1", "elsewhere", "cy")
    resume_flow_run(
        UUID(waiting.run_id),
        run_input={"decision": "approve", "approver": "ann", "reason": "ok"},
    )
    thread.join(timeout=60)
    state = holder["state"]
    assert state.name == "NotPromoted"
    decision = run_outcome(state)
    assert decision["reason"].startswith("approved by ann, but tiny-agent changed while it waited")
    assert decision["level_after"] == "approval"


def test_a_promotion_reads_the_workflow_from_production_telemetry(tmp_path: Path) -> None:
    from datetime import UTC

    from tests.scorecard_data import Item, days_ago, write_telemetry

    data = json.loads(json.dumps(CONTRACT))
    data["evals"]["target"]["version"] = "v1"
    data["autonomy"]["level"] = "approval"
    data["autonomy"]["levels"]["constrained"]["gates"]["escalation_rate"] = {"max": 0.6}
    data["telemetry"] = {"sources": ["telemetry/*"]}
    contract = make_project(tmp_path / "project", data)
    now = datetime.now(UTC)
    items = [
        Item(f"T{i}", days_ago(now, i % 20), hours=float(i % 6 + 1), handled=i % 2 == 0,
             resolved_by="agent" if i % 2 == 0 else "human", escalated=i % 6 == 0)
        for i in range(300)
    ]  # fmt: skip
    write_telemetry(tmp_path / "project" / "telemetry", "tiny-agent", items)
    code, decision = promote(
        contract, tmp_path, "--approve", "--approver", "ann@example.test", "--reason", "measured"
    )
    assert code == 0, decision
    gates = {g["metric"]: g for g in decision["gates"]}
    assert gates["escalation_rate"]["verdict"] == "pass"
    for name in ("cycle_time", "automation_rate", "escalation_rate", "rework_rate"):
        assert gates[f"workflow.{name}"]["verdict"] == "pass"
        assert "measured from production telemetry" in gates[f"workflow.{name}"]["reason"]
    assert (decision["level_before"], decision["level_after"]) == ("approval", "constrained")


@pytest.mark.model
def test_the_billing_example_is_promoted_on_its_golden_gates_and_measured_workflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the example's python target and telemetry source import from here
    monkeypatch.setenv("IMPACTGATE_SERVING_FILE", str(tmp_path / "serving.json"))
    result = CliRunner().invoke(
        cli,
        [
            "promote", "billing-assistant", "--to", "expanded", "--results",
            str(tmp_path / "results"), "--json", "--approve", "--approver", "ann@example.test",
            "--reason", "golden and production gates pass",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    decision = json.loads(result.stdout)
    assert result.exit_code == 0, decision
    gates = {g["metric"]: g["verdict"] for g in decision["gates"]}
    assert set(gates.values()) == {"pass"}
    assert {"escalation_rate", "customer_outcome_progress", "workflow.cycle_time"} <= set(gates)
    assert (decision["level_before"], decision["level_after"]) == ("constrained", "expanded")


@pytest.mark.model
def test_the_account_example_is_refused_expanded_because_its_judge_disagrees_with_its_owner(
    tmp_path: Path,
) -> None:
    """After the story's rollback (v1 at approval), promoting account-support to expanded is
    refused, and the first reason given is its grounding judge's disagreement with the
    owner's labels, in words."""
    import shutil
    from datetime import date

    import yaml

    from examples.telemetry import generate

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "policies", tmp_path / "policies")
    shutil.copytree(
        root / "datasets" / "account-support", tmp_path / "datasets" / "account-support"
    )
    path = tmp_path / "policies" / "account-support.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["autonomy"]["level"] = "approval"  # where the story's rollback leaves it
    data["evals"]["target"]["version"] = "v1"
    data["telemetry"]["sources"] = ["telemetry/*"]  # a fixed history, not one up to today
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    generate("account-support", tmp_path / "telemetry", end=date(2026, 12, 3), days=28)
    result = CliRunner().invoke(
        cli,
        [
            "promote", "account-support", "--to", "expanded", "--policies",
            str(tmp_path / "policies"), "--results", str(tmp_path / "results"), "--json",
            "--approve", "--approver", "ann@example.test", "--reason", "v1 is back",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    decision = json.loads(result.stdout)
    assert result.exit_code == 1, decision
    assert decision["kind"] == "promotion_failed"
    assert decision["level_after"] == "approval"
    first = decision["reason"].split(" did not pass: ", 1)[1]
    assert first.startswith("judge_agreement fail (the grounding judge disagrees with your labels")
    gates = {g["metric"]: g for g in decision["gates"]}
    assert gates["judge_agreement"]["verdict"] == "fail"
    assert (
        "'expanded' needs 75%, so its verdicts cannot decide this level"
        in (gates["judge_agreement"]["reason"])
    )
