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
    assert message.startswith(f"{path}:3: description: invalid YAML: expected ',' or ']'")


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


def test_a_gate_needs_its_suite_and_is_reported_at_the_gate(tmp_path: Path) -> None:
    path = write(tmp_path, edited(evals__suites=["policy", "cost", "latency"]))
    [message] = problems(path)
    line = line_of(path, "faithfulness")
    assert message.startswith(f"{path}:{line}: autonomy.levels.constrained.gates.faithfulness: ")
    assert "needs the 'grounding' suite, which is not enabled; add 'grounding' to evals.suites" in (
        message
    )


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


# --- paths stay inside the project ---------------------------------------------------------


def litellm_target(prompt: str) -> dict[str, Any]:
    return {"kind": "litellm", "model": "openai/gpt-4o-mini", "prompt": prompt}


def test_a_prompt_outside_the_project_is_refused_at_its_line(tmp_path: Path) -> None:
    path = make_project(tmp_path, edited(evals__target=litellm_target("../../../../etc/passwd")))
    [message] = problems(path)
    assert message.startswith(f"{path}:{line_of(path, 'prompt')}: evals.target.prompt: ")
    assert "'../../../../etc/passwd' leads outside the project" in message
    assert "IMPACTGATE_ALLOW_PATHS_OUTSIDE" in message


def test_a_dataset_outside_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "cases.jsonl"
    outside.parent.mkdir()
    outside.write_text('{"id": "c1", "input": "q"}\n')
    project = tmp_path / "project"
    path = make_project(project, edited(evals__dataset=str(outside)))
    [message] = problems(path)
    assert f": evals.dataset: '{outside}' leads outside the project" in message


def test_a_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the model\n")
    project = tmp_path / "project"
    path = make_project(project, edited(evals__target=litellm_target("prompts/answer.j2")))
    (project / "prompts").mkdir()
    (project / "prompts" / "answer.j2").symlink_to(outside)
    [message] = problems(path)
    assert (
        "evals.target.prompt: 'prompts/answer.j2' leads outside the project through a symlink"
        in (message)
    )


def test_a_symlink_loop_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    dataset = tmp_path / "datasets" / "tiny-agent" / "cases.jsonl"
    dataset.unlink()
    loop = tmp_path / "datasets" / "tiny-agent" / "loop.jsonl"
    dataset.symlink_to(loop)
    loop.symlink_to(dataset)
    [message] = problems(path)
    assert f"{path}:{line_of(path, 'dataset')}: evals.dataset: " in message
    assert "is a symlink loop" in message


def test_folders_outside_are_allowed_only_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    (shared / "rules").mkdir(parents=True)
    pack = Path(__file__).resolve().parents[2] / "policies" / "rules" / "default.yaml"
    (shared / "rules" / "default.yaml").write_text(pack.read_text(encoding="utf-8"))
    data = edited()
    data["evals"]["policy"]["rule_packs"] = [str(shared / "rules" / "default.yaml")]
    path = make_project(tmp_path / "project", data)
    [message] = problems(path)
    assert "evals.policy.rule_packs.0:" in message
    monkeypatch.setenv("IMPACTGATE_ALLOW_PATHS_OUTSIDE", str(shared))
    contract = load_contract(path)
    assert contract.resolve(contract.evals.policy.rule_packs[0]).is_file()


def test_resolve_refuses_a_path_from_elsewhere_naming_the_contract(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path))
    with pytest.raises(UserError) as info:
        contract.resolve("../outside.jsonl")
    assert "'../outside.jsonl' leads outside the project" in str(info.value)
    # A path the contract itself wrote is named by its field and line.
    assert str(contract.resolve(contract.evals.dataset)).endswith("cases.jsonl")


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("channel", "https://hooks.example.com/a b", "may not be empty or contain spaces"),
        ("channel", "https://-bad-.example/x", "is not a valid host name"),
        ("hook", "http:///no-host", "the URL has no host"),
        ("api_base", "http://127.0.0.1:99999/v1", "not a valid URL"),
        ("http", "https://agent .example/answer", "may not be empty or contain spaces"),
    ],
)
def test_a_bad_url_is_refused_at_its_field(
    tmp_path: Path, where: str, value: str, expected: str
) -> None:
    data = edited()
    if where == "channel":
        data["autonomy"]["escalation"]["channels"] = [{"url": value}]
        field = "autonomy.escalation.channels.0.url"
    elif where == "hook":
        data["autonomy"]["rollback"]["hook"] = {"kind": "webhook", "url": value}
        field = "autonomy.rollback.hook.url"
    elif where == "api_base":
        data["evals"]["target"] = {**litellm_target("p.j2"), "api_base": value}
        field = "evals.target.api_base"
    else:
        data["evals"]["target"] = {"kind": "http", "url": value}
        field = "evals.target.url"
    path = write(tmp_path, data)
    [message] = problems(path)
    text = path.read_text().splitlines()
    line = 1 + next(
        i
        for i, t in enumerate(text)
        if t.strip().removeprefix("- ").startswith(f"{field.rpartition('.')[2]}:")
    )
    assert message.startswith(f"{path}:{line}: {field}: ")
    assert expected in message


# --- contracts that would quietly change meaning -------------------------------------------


def test_a_repeated_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = yaml.safe_dump(edited(), sort_keys=False).replace(
        "        faithfulness:\n          min: 0.5\n",
        "        faithfulness:\n          min: 0.5\n        faithfulness:\n          min: 0\n",
    )
    path = write(tmp_path, text)
    first = line_of(path, "faithfulness")
    [message] = problems(path)
    assert message == (
        f"{path}:{first + 2}: autonomy.levels.constrained.gates.faithfulness: duplicate key "
        f"'faithfulness' (first at line {first}, again at line {first + 2}); YAML would silently "
        "keep only the last value, so remove one"
    )


@pytest.mark.parametrize(
    ("metric", "threshold", "expected"),
    [
        ("faithfulness", {"min": 1.5}, "1.5 is out of range: 'faithfulness' is a share"),
        ("policy_violation_rate", {"max": -0.1}, "-0.1 is out of range"),
        (
            "cost_per_case_usd",
            {"max": -1},
            "'cost_per_case_usd' is in USD, so a threshold must be at least 0",
        ),
    ],
)
def test_a_threshold_outside_the_metrics_range_is_refused(
    tmp_path: Path, metric: str, threshold: dict[str, float], expected: str
) -> None:
    data = edited()
    data["autonomy"]["levels"]["approval"]["gates"][metric] = threshold
    path = write(tmp_path, data)
    found = problems(path)
    direction = next(iter(threshold))
    field = f"autonomy.levels.approval.gates.{metric}.{direction}"
    assert any(m.startswith(f"{path}:") and f": {field}: " in m and expected in m for m in found), (
        found
    )


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_a_non_finite_number_is_refused_anywhere(tmp_path: Path, value: str) -> None:
    text = yaml.safe_dump(edited(), sort_keys=False)
    text = text.replace("          max: 0.4\n", f"          max: {value}\n")
    text = text.replace("  error_budget: 0.1\n", f"  error_budget: {value}\n")
    path = write(tmp_path, text)
    found = problems(path)
    assert found == [
        f"{path}:{line_of(path, 'error_budget')}: workflow.error_budget: '{value}' is not a "
        "finite number; give a real number",
        f"{path}:{line_of(path, 'max')}: autonomy.levels.approval.gates.policy_violation_rate.max: "
        f"'{value}' is not a finite number; give a real number",
    ]
    assert not any("nan is looser" in m for m in found)


def test_a_quoted_nan_threshold_is_refused_too(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["approval"]["gates"]["policy_violation_rate"] = {"max": "nan"}
    [message] = problems(write(tmp_path, data))
    assert "policy_violation_rate.max: Input should be a finite number" in message


def test_a_level_without_a_quality_gate_is_refused(tmp_path: Path) -> None:
    empty = edited(autonomy__levels={}, autonomy__rollback={"demote_to": "draft"})
    path = write(tmp_path, empty)
    [message] = problems(path)
    assert message.startswith(f"{path}:{line_of(path, 'levels')}: autonomy.levels: ")
    assert "level 'constrained' has no quality gate" in message
    assert "error_rate, cost and latency gates alone" in message

    latency_only = edited(
        autonomy__levels={"constrained": {"gates": {"latency_p95_s": {"max": 3}}}},
        autonomy__rollback={"demote_to": "draft"},
    )
    path = write(tmp_path, latency_only)
    [message] = problems(path)
    assert ": autonomy.levels.constrained: level 'constrained' has no quality gate" in message


def test_a_higher_level_that_loosens_a_gate_is_reported_at_that_gate(tmp_path: Path) -> None:
    data = edited()
    data["autonomy"]["levels"]["constrained"]["gates"]["policy_violation_rate"] = {"max": 0.9}
    path = write(tmp_path, data)
    [message] = problems(path)
    line = len(path.read_text().split("constrained:\n", 2)[0].splitlines())
    assert ": autonomy.levels.constrained.gates.policy_violation_rate: " in message
    assert int(message.split(":")[1]) > line


# --- YAML that costs or hides ----------------------------------------------------------------


def test_an_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    path = write(tmp_path, "agent: tiny-agent\n" + "\n".join(lines) + "\n")
    start = time.perf_counter()
    [message] = problems(path)
    assert time.perf_counter() - start < 1.0
    assert message == (
        f"{path}:3: a1: YAML aliases (*name) are not accepted here; write the value out in full"
    )


def test_non_utf8_bytes_name_their_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, edited())
    line = line_of(path, "description")
    path.write_bytes(path.read_bytes().replace(b"A tiny agent", b"A tiny \xff agent"))
    [message] = problems(path)
    assert message == (
        f"{path}:{line}: description: not UTF-8 text (byte 21 of the line); save the file as UTF-8"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "expected a contract: a YAML mapping with 'agent:' at the top, not an empty file"),
        ("- agent: tiny-agent\n", "not a list"),
        ("[" * 1500 + "]" * 1500 + "\n", "nested too deeply"),
    ],
)
def test_a_file_that_is_no_mapping_is_named_at_line_one(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    [message] = problems(path)
    assert message.startswith(f"{path}:1: (top level): ")
    assert expected in message


def test_a_label_file_is_named_once_and_must_exist(tmp_path: Path) -> None:
    from evals.contract import reference_problems

    data = edited()
    data["evals"]["grounding"] = {"labels": "datasets/tiny-agent/labels.csv"}
    contract = load_contract(make_project(tmp_path / "missing", data))
    [problem] = reference_problems(contract)
    assert problem.field == "evals.grounding.labels"
    assert "'datasets/tiny-agent/labels.csv' does not exist" in problem.message
    data["evals"]["grounding"]["calibration"] = {"labels": "datasets/tiny-agent/labels.csv"}
    [message] = problems(make_project(tmp_path / "twice", data))
    assert "give the label file once" in message
