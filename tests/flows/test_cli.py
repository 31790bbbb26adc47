"""The CLI through click's runner: exit codes, messages, and JSON that parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flows.cli.main import cli
from tests.helpers import CONTRACT, make_project

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_validate_the_committed_policies() -> None:
    code, out, _ = invoke("validate", "--policies", str(ROOT / "policies"))
    assert code == 0
    assert out.count("ok ") == 3


def test_validate_reports_every_problem_as_file_field_message(tmp_path: Path) -> None:
    data = json.loads(json.dumps(CONTRACT))
    data["autonomy"]["levels"]["constrained"]["gates"]["halucination_rate"] = {"max": 0.1}
    make_project(tmp_path, data)
    (tmp_path / "datasets" / "tiny-agent" / "cases.jsonl").write_text('{"id": "a"}\n')
    code, _, err = invoke("validate", "--policies", str(tmp_path / "policies"))
    assert code == 2
    assert (
        "autonomy.levels.constrained.gates: unknown metric 'halucination_rate' (did you mean" in err
    )
    assert "Traceback" not in err


def test_validate_json(tmp_path: Path) -> None:
    make_project(tmp_path)
    code, out, _ = invoke("validate", "--policies", str(tmp_path / "policies"), "--json")
    assert code == 0
    assert json.loads(out)["checked"][0]["agent"] == "tiny-agent"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["run", "tiny-agnet"],
            2,
            "no contract for agent 'tiny-agnet' (did you mean 'tiny-agent'?)",
        ),
        (["run", "--trigger", "hourly"], 2, "Invalid value for '--trigger'"),
        (["status", "--bogus"], 2, "No such option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    make_project(tmp_path)
    extra = ["--policies", str(tmp_path / "policies")] if args[0] == "run" else []
    exit_code, _, err = invoke(*args, *extra)
    assert exit_code == code
    assert message in err


def test_run_with_a_missing_dataset_exits_2_before_prefect_starts(tmp_path: Path) -> None:
    contract = make_project(tmp_path)
    data = yaml.safe_load(contract.read_text())
    data["evals"]["dataset"] = "datasets/tiny-agent/missing.jsonl"
    contract.write_text(yaml.safe_dump(data))
    code, _, err = invoke(
        "run", "--policies", str(tmp_path / "policies"), "--results", str(tmp_path / "r")
    )
    assert code == 2
    assert "missing.jsonl: file not found" in err


def test_schema_check_passes_on_the_committed_schemas() -> None:
    code, out, _ = invoke("schema", "--policies", str(ROOT / "policies"), "--check")
    assert code == 0
    assert "up to date" in out


def test_status_on_an_empty_results_root(tmp_path: Path) -> None:
    code, out, _ = invoke("status", "--results", str(tmp_path / "results"))
    assert code == 0
    assert "No agents in the ledger" in out


@pytest.mark.usefixtures("prefect_harness")
def test_run_json_fail_on_breach_and_status(tmp_path: Path) -> None:
    make_project(tmp_path)
    results = str(tmp_path / "results")
    code, out, _ = invoke(
        "run",
        "--policies",
        str(tmp_path / "policies"),
        "--results",
        results,
        "--json",
        "--fail-on-breach",
    )
    assert code == 1
    [summary] = json.loads(out)["runs"]
    assert summary["action"] == "rollback"
    gated = {m["metric"]: m["verdict"] for m in summary["metrics"] if m["verdict"]}
    assert gated["policy_violation_rate"] == "fail"

    code, out, _ = invoke("status", "--results", results, "--json")
    assert code == 0
    [agent] = json.loads(out)["agents"]
    assert (agent["active_version"], agent["level"]) == ("v1", "approval")
    assert agent["latest_decision"]["kind"] == "rollback"

    # Without --fail-on-breach a completed run exits 0, and the table names the action.
    code, out, _ = invoke("run", "--policies", str(tmp_path / "policies"), "--results", results)
    assert code == 0
    assert "tiny-agent" in out
    assert "policy_violation_rate" in out


@pytest.mark.usefixtures("prefect_harness")
def test_a_rollback_whose_hook_fails_is_a_failed_run(tmp_path: Path) -> None:
    import copy

    from tests.helpers import CONTRACT

    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    data["autonomy"]["rollback"]["hook"] = {"kind": "python", "function": "broken_hook:switch"}
    make_project(tmp_path, data)
    (tmp_path / "broken_hook.py").write_text(
        "def switch(change):\n    raise RuntimeError('the serving API refused')\n"
    )
    code, out, err = invoke(
        "run", "--policies", str(tmp_path / "policies"), "--results", str(tmp_path / "results")
    )
    assert code == 1, "serving was not rolled back: the run did not do its job"
    assert "rolled back v2 → v1" in out
    assert "tiny-agent: SERVING NOT ROLLED BACK" in err


@pytest.mark.model
def test_judge_grounding_scores_labelled_rows(tmp_path: Path) -> None:
    rows = [
        {
            "id": "a",
            "question": "q",
            "context": "Refunds take 5 business days.",
            "answer": "Refunds take 5 business days.",
            "label": 0,
        },
        {
            "id": "b",
            "question": "q",
            "context": ["Refunds take 5 business days."],
            "answer": "Refunds take 12 business days.",
            "label": 1,
        },
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = tmp_path / "out" / "scored.jsonl"
    code, _, err = invoke("judge", "grounding", "--input", str(source), "--output", str(target))
    assert code == 0, err
    scored = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in scored] == ["a", "b"]
    assert [r["label_pred"] for r in scored] == [0, 1]
    assert scored[1]["score"] < scored[0]["score"]
    assert scored[1]["claims"][0]["text"] == "Refunds take 12 business days."
    assert scored[0]["label"] == 0, "input fields are kept"
    assert not list(target.parent.glob(".*.tmp")), "no temporary file is left behind"


def test_judge_grounding_names_the_bad_line(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(
        '{"question": "q", "context": "c", "answer": "a"}\n{"question": "q", "answer": "a"}\n'
    )
    code, _, err = invoke(
        "judge", "grounding", "--input", str(source), "--output", str(tmp_path / "o.jsonl")
    )
    assert code == 2
    assert "rows.jsonl: line 2: field 'context': required" in err
    code, _, err = invoke(
        "judge",
        "grounding",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.jsonl"),
        "--judge",
        "llm",
    )
    assert code == 2
    assert "needs 'model'" in err
