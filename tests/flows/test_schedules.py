"""prefect.yaml's nightly deployments against the contracts' schedules (no Prefect needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deployments import NIGHTLY_ENTRYPOINT, schedule_problems
from tests.helpers import CONTRACT, make_project

ROOT = Path(__file__).resolve().parents[2]


def nightly(name: str = "nightly", cron: str = "0 2 * * *", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "entrypoint": NIGHTLY_ENTRYPOINT,
        "schedules": [{"cron": cron, "timezone": "UTC"}],
        **extra,
    }


def project(tmp_path: Path, *deployments: dict[str, Any], schedule: Any = None) -> Path:
    data = json.loads(json.dumps(CONTRACT))
    if schedule is not None:
        data["evals"]["schedule"] = schedule
    contract = make_project(tmp_path, data)
    (tmp_path / "prefect.yaml").write_text(
        yaml.safe_dump({"name": "p", "deployments": list(deployments)}, sort_keys=False)
    )
    return contract.parent


def test_the_repository_deployments_agree_with_its_contracts() -> None:
    assert schedule_problems(ROOT / "policies") == []


def test_a_project_without_prefect_yaml_has_nothing_to_disagree_with(tmp_path: Path) -> None:
    policies = make_project(tmp_path).parent
    assert schedule_problems(policies) == []


@pytest.mark.parametrize(
    ("deployments", "schedule", "field", "message"),
    [
        (
            [nightly(cron="0 3 * * *")],
            None,
            "deployments[nightly].schedules[0]",
            "tiny-agent runs at '0 3 * * *' (UTC) here, but its contract "
            "(policies/tiny-agent.yaml: evals.schedule) says '0 2 * * *' (UTC); make them agree",
        ),
        (
            [nightly()],
            {"cron": "0 2 * * *", "timezone": "Europe/Paris"},
            "deployments[nightly].schedules[0]",
            "tiny-agent runs at '0 2 * * *' (UTC) here, but its contract "
            "(policies/tiny-agent.yaml: evals.schedule) says '0 2 * * *' (Europe/Paris)",
        ),
        (
            [nightly(parameters={"agents": ["someone-else"]})],
            None,
            "deployments",
            "no scheduled nightly deployment runs tiny-agent",
        ),
        (
            [{"name": "ci-gate", "entrypoint": "flows/ci_gate.py:ci_gate"}],
            None,
            "deployments",
            f"no deployment runs {NIGHTLY_ENTRYPOINT}",
        ),
        (
            [nightly() | {"schedules": [{"interval": 3600}]}],
            None,
            "deployments[nightly].schedules[0]",
            "tiny-agent: not a cron schedule",
        ),
    ],
    ids=["cron", "timezone", "agent-not-deployed", "no-nightly", "interval"],
)
def test_a_disagreement_names_the_deployment_the_agent_and_both_schedules(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    deployments: list[dict[str, Any]],
    schedule: Any,
    field: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    policies = project(tmp_path, *deployments, schedule=schedule)
    [problem] = schedule_problems(policies)
    assert problem.file.startswith("prefect.yaml:")
    assert problem.field == field
    assert message in problem.message


def test_schedules_of_nightly_deployments_for_other_agents_are_not_this_agents(
    tmp_path: Path,
) -> None:
    policies = project(
        tmp_path,
        nightly("nightly-1", parameters={"agents": ["tiny-agent"]}),
        nightly("nightly-2", cron="30 4 * * *", parameters={"agents": ["another"]}),
        nightly("paused", cron="0 9 * * *")
        | {"schedules": [{"cron": "0 9 * * *", "active": False}]},
    )
    assert schedule_problems(policies) == []


def test_the_problem_points_at_the_schedule_line(tmp_path: Path) -> None:
    policies = project(tmp_path, nightly(cron="15 2 * * *"))
    [problem] = schedule_problems(policies)
    lines = (tmp_path / "prefect.yaml").read_text().splitlines()
    line = int(problem.file.rsplit(":", 1)[1])
    assert "cron: 15 2" in lines[line - 1]
