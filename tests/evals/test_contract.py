"""Contract errors name the file, the line, the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from evals.contract import Threshold, load_contract
from evals.errors import UserError
from tests.helpers import CONTRACT, make_project


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "tiny-agent.yaml") -> Path:
    path = tmp_path / "policies" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(UserError) as info:
        load_contract(path)
    return [str(p) for p in info.value.problems]


def edited(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CONTRACT)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return data


def test_valid_contract_loads_and_resolves_paths_against_the_project_root(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path))
    assert contract.root == tmp_path.resolve()
    assert contract.resolve(contract.evals.dataset).is_file()
    assert contract.gates("constrained") == {
        "error_rate": Threshold(max=0.1),
        "policy_violation_rate": Threshold(max=0.4),
        "faithfulness": Threshold(min=0.5),
    }


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "agent: tiny-agent\ndescription: [unclosed\nowner: x\n")
    [message] = problems(path)
    assert message.startswith(f"{path}:3: invalid YAML: expected ',' or ']'")


def test_unknown_metric_gets_a_suggestion_and_a_line(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["constrained"]["gates"] = {"faithfulnes": {"min": 0.8}}
    [message] = problems(write(tmp_path, data))
    assert "autonomy.levels.constrained.gates" in message
    assert "unknown metric 'faithfulnes' (did you mean 'faithfulness'?)" in message
    assert ".yaml:" in message.split(": ")[0], "the line number is part of the location"


def test_unknown_field_gets_a_suggestion(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["min_sample"] = 10
    [message] = problems(write(tmp_path, data))
    assert (
        "autonomy.min_sample: unknown field 'min_sample' (did you mean 'min_samples'?)" in message
    )


def test_wrong_type_and_missing_field(tmp_path: Path) -> None:
    data = edited(autonomy__confidence="high")
    del data["owner"]
    found = problems(write(tmp_path, data))
    assert any("owner: required field is missing" in m for m in found)
    assert any("autonomy.confidence" in m and "valid number" in m for m in found)


def test_threshold_needs_exactly_one_direction(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["approval"]["gates"]["policy_violation_rate"] = {
        "min": 0.1,
        "max": 0.2,
    }
    [message] = problems(write(tmp_path, data))
    assert "give exactly one of 'min' or 'max'" in message


def test_a_higher_level_may_not_loosen_a_gate(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["constrained"]["gates"]["policy_violation_rate"] = {"max": 0.9}
    [message] = problems(write(tmp_path, data))
    assert "looser than levels.approval.gates.policy_violation_rate" in message


def test_a_gate_needs_its_suite(tmp_path: Path) -> None:
    data = edited(evals__suites=["policy", "cost", "latency"])
    [message] = problems(write(tmp_path, data))
    assert "needs the 'grounding' suite; add 'grounding' to evals.suites" in message


def test_unknown_target_kind_lists_the_choices(tmp_path: Path) -> None:
    data = edited(evals__target={"kind": "grpc", "version": "v1"})
    [message] = problems(write(tmp_path, data))
    assert "evals.target" in message
    assert "'replay'" in message
    assert "'python'" in message


def test_file_name_must_match_the_agent(tmp_path: Path) -> None:
    [message] = problems(write(tmp_path, edited(), name="other.yaml"))
    assert "does not match the file name 'other.yaml'" in message


def test_rollback_metric_must_be_gated(tmp_path: Path) -> None:
    data = edited(autonomy__rollback={"metrics": ["cost_per_case_usd"], "demote_to": "draft"})
    [message] = problems(write(tmp_path, data))
    assert "rollback.metrics names 'cost_per_case_usd', which no level gates" in message


def test_an_explicit_error_rate_gate_cannot_loosen_the_error_budget(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["approval"]["gates"]["error_rate"] = {"max": 0.5}
    contract = load_contract(write(tmp_path, data))
    assert contract.gates("approval")["error_rate"] == Threshold(max=0.1)
