"""impactgate ci on a real git repository: regressions fail, identical candidates pass."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flows.cli.main import cli
from tests.helpers import CONTRACT, make_project

QUIET = ("-p", "no:cacheprovider", "-p", "no:faker", "-p", "no:langsmith_plugin")
"""Plugins an inner pytest session does without (as the project's own pytest does)."""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.test", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def project(tmp_path: Path, **autonomy: object) -> Path:
    """The test project gated on policy, cost and latency: what these gates are about, and no
    embedding model to load."""
    data = json.loads(json.dumps(CONTRACT))
    data["evals"]["target"]["version"] = "v1"
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    data["autonomy"].update(autonomy)
    repo = tmp_path / "repo"
    contract = make_project(repo, data, leak_every=2)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "baseline")
    return contract


def run_ci(contract: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli,
        [
            "ci",
            "--baseline",
            "HEAD",
            "--policies",
            str(contract.parent),
            "--results",
            str(tmp_path / "results"),
            *extra,
        ],
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def test_a_real_regression_fails_and_names_the_metric_and_cases(tmp_path: Path) -> None:
    contract = project(tmp_path)
    data = yaml.safe_load(contract.read_text())
    data["evals"]["target"]["version"] = "v2"  # the new version repeats customers' emails
    contract.write_text(yaml.safe_dump(data, sort_keys=False))
    markdown_file, junit_file = tmp_path / "summary.md", tmp_path / "junit.xml"
    code, out, _ = run_ci(
        contract, tmp_path, "--json", "--markdown", str(markdown_file), "--junit", str(junit_file)
    )
    assert code == 1
    [agent] = json.loads(out)["agents"]
    assert agent["changed_files"] == ["policies/tiny-agent.yaml"]
    comparison = next(c for c in agent["comparisons"] if c["metric"] == "policy_violation_rate")
    assert comparison["change"] == "regression"
    assert comparison["worse_cases"] == ["c2", "c4", "c6", "c8"]
    assert any(f.startswith("policy_violation_rate regressed") for f in agent["failures"])

    summary = markdown_file.read_text()
    assert "❌ tiny-agent" in summary
    assert "cases worse on policy_violation_rate: `c2`, `c4`, `c6`, `c8`" in summary
    suites = ET.parse(junit_file).getroot()
    failed = {c.get("name") for c in suites.iter("testcase") if c.find("failure") is not None}
    assert "policy_violation_rate" in failed
    assert int(suites.get("tests", "0")) == len(list(suites.iter("testcase")))


def test_an_identical_candidate_passes_and_reuses_stored_runs(tmp_path: Path) -> None:
    contract = project(tmp_path)
    code, _, err = run_ci(contract, tmp_path, "--agent", "tiny-agent")
    assert code == 0, err
    code, out, err = run_ci(contract, tmp_path, "--agent", "tiny-agent", "--json")
    assert code == 0
    assert "stored run" in err, "the second gate reuses both stored runs"
    [agent] = json.loads(out)["agents"]
    assert {c["change"] for c in agent["comparisons"]} == {"no_change"}


def test_too_few_cases_is_inconclusive_and_fails_with_that_reason(tmp_path: Path) -> None:
    contract = project(tmp_path, min_samples=30)
    code, out, _ = run_ci(contract, tmp_path, "--agent", "tiny-agent", "--json")
    assert code == 1
    [agent] = json.loads(out)["agents"]
    assert any("only 8 scored cases; the contract needs 30" in f for f in agent["failures"])


def test_nothing_changed_nothing_to_gate(tmp_path: Path) -> None:
    contract = project(tmp_path)
    code, out, _ = run_ci(contract, tmp_path)
    assert code == 0
    assert "nothing to gate" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "no-such-ref"], "--baseline"),
        (["--agent", "nobody"], "no contract for agent 'nobody'"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    contract = project(tmp_path)
    result = CliRunner().invoke(
        cli, ["ci", "--policies", str(contract.parent), "--results", str(tmp_path / "r"), *args]
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_the_pytest_plugin_reports_a_failing_gate_as_a_failed_test(
    tmp_path: Path, pytester: pytest.Pytester
) -> None:
    contract = project(tmp_path)
    data = yaml.safe_load(contract.read_text())
    data["evals"]["target"]["version"] = "v2"
    contract.write_text(yaml.safe_dump(data, sort_keys=False))
    result = pytester.runpytest(
        "--impactgate",
        "--impactgate-baseline=HEAD",
        f"--impactgate-policies={contract.parent}",
        f"--impactgate-results={tmp_path / 'results'}",
        *QUIET,
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    assert outcomes.get("passed", 0) >= 1
    result.stdout.fnmatch_lines(
        [
            "*impactgate gate failed for tiny-agent at constrained*",
            "*policy_violation_rate regressed*",
        ]
    )


def test_the_pytest_plugin_is_off_without_its_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)
