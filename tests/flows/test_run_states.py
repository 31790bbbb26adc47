"""A run that fails says so in a state Prefect can report, and keeps what it found."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flows.cli.main import cli
from tests.helpers import CONTRACT, make_project

pytestmark = pytest.mark.usefixtures("prefect_harness")


def two_agents(tmp_path: Path) -> Path:
    """tiny-agent and tiny-two, on the cheap suites; returns the policies folder."""
    data = json.loads(json.dumps(CONTRACT))
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    contract = make_project(tmp_path / "project", data)
    second = contract.parent / "tiny-two.yaml"
    second.write_text(contract.read_text().replace("agent: tiny-agent", "agent: tiny-two"))
    return contract.parent


def test_run_prints_every_summary_and_exits_1_when_an_agent_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from evals.runs import RunSession

    policies = two_agents(tmp_path)
    real_open = RunSession.open

    def open_or_fail(contract: Any, *args: Any, **kwargs: Any) -> RunSession:
        if str(contract).endswith("tiny-two.yaml"):
            raise OSError("results volume is read-only")
        return real_open(contract, *args, **kwargs)

    monkeypatch.setattr(RunSession, "open", open_or_fail)
    runner = CliRunner()
    args = ["run", "--policies", str(policies), "--results"]
    as_json = runner.invoke(cli, [*args, str(tmp_path / "first"), "--json"])
    assert as_json.exit_code == 1
    runs = {r["agent"]: r for r in json.loads(as_json.stdout)["runs"]}
    assert runs["tiny-agent"]["action"] == "rollback"
    assert "results volume is read-only" in runs["tiny-two"]["error"]

    table = runner.invoke(cli, [*args, str(tmp_path / "second")])
    assert table.exit_code == 1
    rows = [line for line in table.stdout.splitlines() if line.lstrip().startswith("tiny-two")]
    assert len(rows) == 1, table.stdout
    row = rows[0]
    assert "error" in row
    assert "tiny-agent: rolled back v2 → v1" in table.stdout

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert "| tiny-two | golden | | | **error** | " in str(artifact.data)
    assert "| tiny-agent | golden | v2 | constrained | fail | rollback |" in str(artifact.data)
