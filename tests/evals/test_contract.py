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


def line_of(path: Path, key: str) -> int:
    """1-based line of the first ``key:`` in the file."""
    lines = path.read_text().splitlines()
    return 1 + next(i for i, text in enumerate(lines) if text.strip().startswith(f"{key}:"))


@pytest.mark.parametrize(
    ("target", "field", "message"),
    [
        (
            {"kind": "replay", "version": "v2", "ouputs": "datasets/tiny-agent/outputs.jsonl"},
            "ouputs",
            "unknown field 'ouputs' (did you mean 'outputs'?)",
        ),
        (
            {"kind": "python", "function": "agents.tiny:answer", "parms": {"tone": "brief"}},
            "parms",
            "unknown field 'parms' (did you mean 'params'?)",
        ),
        (
            {"kind": "python", "function": "agents.tiny:answer", "version": "v3"},
            "version",
            "'version' does not apply to kind 'python' (kinds that take it: replay, http)",
        ),
        (
            {"kind": "litellm", "model": "openai/gpt-4o-mini", "prompt": "p.j2", "concurency": 4},
            "concurency",
            "unknown field 'concurency' (did you mean 'concurrency'?)",
        ),
        (
            {"kind": "litellm", "model": "openai/gpt-4o-mini", "prompt": "p.j2", "api_bse": "x"},
            "api_bse",
            "unknown field 'api_bse' (did you mean 'api_base'?)",
        ),
        (
            {"kind": "http", "url": "http://127.0.0.1:9/agent", "requests_per_minut": 60},
            "requests_per_minut",
            "unknown field 'requests_per_minut' (did you mean 'requests_per_minute'?)",
        ),
        (
            {"kind": "http", "url": "http://127.0.0.1:9/agent", "verison": "2024-06"},
            "verison",
            "unknown field 'verison' (did you mean 'version'?)",
        ),
        (
            {"kind": "http", "url": "http://127.0.0.1:9/agent", "response": {"ouput": "answer"}},
            "response.ouput",
            "unknown field 'ouput' (did you mean 'output'?)",
        ),
        (
            {"kind": "litellm", "model": "m", "prompt": "p.j2", "retry": {"attemps": 2}},
            "retry.attemps",
            "unknown field 'attemps' (did you mean 'attempts'?)",
        ),
        (
            {"kind": "htp", "url": "http://127.0.0.1:9/agent"},
            "kind",
            "unknown kind 'htp' (did you mean 'http'?)",
        ),
    ],
    ids=lambda v: v["kind"] if isinstance(v, dict) else (v if " " not in v else ""),
)
def test_a_mistake_in_any_target_kind_is_reported_at_its_own_line(
    tmp_path: Path, target: dict[str, Any], field: str, message: str
) -> None:
    path = write(tmp_path, edited(evals__target=target))
    line = line_of(path, field.rpartition(".")[2])
    assert problems(path) == [f"{path}:{line}: evals.target.{field}: {message}"]


def test_a_mistake_in_a_channel_is_reported_at_its_own_line(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["escalation"]["channels"] = [
        {"url": "http://127.0.0.1:9/hook", "timeout": 3},
        {
            "kind": "email",
            "to": ["a@x.test"],
            "sender": "gate@x.test",
            "smtp_host": "h",
            "url": "x",
        },
    ]
    path = write(tmp_path, data)
    where = "autonomy.escalation.channels"
    assert problems(path) == [
        f"{path}:{line_of(path, 'timeout')}: {where}.0.timeout: "
        "unknown field 'timeout' (did you mean 'timeout_s'?)",
        f"{path}:{line_of(path, 'smtp_host') + 1}: {where}.1.url: "
        "'url' does not apply to kind 'email' (kinds that take it: webhook)",
    ]


def test_a_missing_field_says_what_it_is_for(tmp_path: Path) -> None:
    path = write(tmp_path, edited(evals__target={"kind": "replay"}))
    assert problems(path) == [
        f"{path}:{line_of(path, 'kind') - 1}: evals.target.version: "
        "required field is missing (the recorded version that is deployed now)"
    ]


def test_a_misspelt_level_gets_a_suggestion_at_its_line(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["constraned"] = data["autonomy"]["levels"].pop("constrained")
    path = write(tmp_path, data)
    [message] = problems(path)
    assert message.startswith(f"{path}:{line_of(path, 'constraned')}: autonomy.levels.constraned:")
    assert message.endswith("(got 'constraned'; did you mean 'constrained'?)")
