"""Every committed contract, dataset, recording and rule pack loads; the schemas are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.contract import discover_contracts, load_contract
from evals.policy import load_rule_pack
from evals.reference import schemas
from evals.runs import prepare

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", discover_contracts(ROOT / "policies"), ids=lambda p: p.stem)
def test_contract_loads_with_its_dataset_and_target(path: Path) -> None:
    plan = prepare(load_contract(path))
    assert len(plan.dataset) >= 40
    assert plan.scorers, "a contract runs at least one suite"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "policies" / "rules").glob("*.yaml")), ids=lambda p: p.stem
)
def test_rule_pack_loads(path: Path) -> None:
    assert load_rule_pack(path).rules


def test_committed_schemas_match_the_models() -> None:
    for path, text in schemas(ROOT / "policies").items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale; run `impactgate schema`"


def test_every_contract_starts_with_its_schema_line() -> None:
    for path in discover_contracts(ROOT / "policies"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=contract.schema.json", path


def test_nightly_deployment_schedule_matches_the_contracts() -> None:
    import yaml

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    [nightly] = [d for d in deployments if d["name"] == "nightly"]
    [schedule] = nightly["schedules"]
    for path in discover_contracts(ROOT / "policies"):
        contract = load_contract(path)
        assert (contract.evals.schedule.cron, contract.evals.schedule.timezone) == (
            schedule["cron"],
            schedule["timezone"],
        ), f"{path.name}: its evals.schedule differs from prefect.yaml's nightly deployment"
