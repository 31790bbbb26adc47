"""``impactgate validate`` reports every problem of every contract and never stops at one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from evals.errors import display_path
from flows.cli.main import cli
from tests.helpers import CONTRACT, make_project


def validate(tmp_path: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, ["validate", "--policies", str(tmp_path / "policies")], catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def contract(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CONTRACT)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return data


def add_contract(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "policies" / f"{data['agent']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def line_of(path: Path, key: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return 1 + next(i for i, text in enumerate(lines) if text.strip().startswith(f"{key}:"))


def test_one_broken_contract_never_stops_the_others(tmp_path: Path) -> None:
    make_project(tmp_path)
    broken = add_contract(
        tmp_path, contract(agent="broken-agent", evals__dataset="datasets/nowhere.jsonl")
    )
    (tmp_path / "policies" / "after-agent.yaml").write_text("agent: after-agent\nowner: [\n")
    code, out, err = validate(tmp_path)
    assert code == 2
    assert "tiny-agent.yaml: 8 cases" in out
    assert (
        f"{display_path(broken)}:{line_of(broken, 'dataset')}: evals.dataset: "
        "'datasets/nowhere.jsonl' does not exist"
    ) in err
    assert "after-agent.yaml:3: owner: invalid YAML" in err
    assert "Traceback" not in out + err


def test_a_broken_dataset_does_not_hide_a_broken_rule_pack(tmp_path: Path) -> None:
    data = contract()
    data["evals"]["policy"]["rule_packs"] = ["policies/rules/default.yaml", "packs/x.yaml"]
    make_project(tmp_path, data)
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "x.yaml").write_text(
        "name: x\ndescription: d\nrules:\n  - id: x.r\n    kind: regex\n    severity: high\n"
        "    message: m\n    pattern: '(a+)+$'\n",
        encoding="utf-8",
    )
    (tmp_path / "datasets" / "tiny-agent" / "cases.jsonl").write_text('{"id": "a", "input": " "}\n')
    code, _, err = validate(tmp_path)
    assert code == 2
    assert "cases.jsonl: row 1 (line 1): column 'input': is blank" in err
    assert "x.yaml:8: rules.0.pattern: 'pattern': '(a+)+$' risks catastrophic backtracking" in err
    assert err.count("risks catastrophic backtracking") == 1


def hook_contract(function: str) -> dict[str, Any]:
    data = contract()
    data["autonomy"]["rollback"]["hook"] = {"kind": "python", "function": function}
    return data


def test_a_rollback_hook_that_cannot_be_imported_is_an_error(tmp_path: Path) -> None:
    path = make_project(tmp_path, hook_contract("ops.rollback:undeploy"))
    code, _, err = validate(tmp_path)
    assert code == 2
    line = line_of(path, "function")
    assert (
        f":{line}: autonomy.rollback.hook.function: cannot import 'ops.rollback': no module 'ops'"
        in err
    )

    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "__init__.py").write_text("")
    (tmp_path / "ops" / "rollback.py").write_text("def redeploy(change):\n    return None\n")
    code, _, err = validate(tmp_path)
    assert code == 2
    assert "autonomy.rollback.hook.function: 'ops.rollback' has no function 'undeploy'" in err

    (tmp_path / "ops" / "rollback.py").write_text("def undeploy(change:\n")
    code, _, err = validate(tmp_path)
    assert code == 2
    source = display_path(tmp_path / "ops" / "rollback.py")
    assert f"cannot import 'ops.rollback': {source}:1: '(' was never closed" in err


def test_validating_a_hook_runs_none_of_its_code(tmp_path: Path) -> None:
    make_project(tmp_path, hook_contract("ops_hook:undeploy"))
    marker = tmp_path / "ran"
    (tmp_path / "ops_hook.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n"
        "def undeploy(change):\n    return None\n"
    )
    code, out, err = validate(tmp_path)
    assert code == 0, err
    assert "tiny-agent.yaml: 8 cases" in out
    assert not marker.exists()


def test_a_python_telemetry_source_is_checked_like_a_hook_and_none_of_its_code_runs(
    tmp_path: Path,
) -> None:
    data = contract()
    data["telemetry"] = {"sources": [{"kind": "python", "function": "exporter:pull"}]}
    make_project(tmp_path, data)
    code, _, err = validate(tmp_path)
    assert code == 2
    assert "tiny-agent.yaml" in err
    assert "telemetry.sources.0.function: cannot import 'exporter': no module 'exporter'" in err

    marker = tmp_path / "ran"
    (tmp_path / "exporter.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n"
        "def fetch(folder, *, end):\n    return []\n"
    )
    code, _, err = validate(tmp_path)
    assert code == 2
    assert "telemetry.sources.0.function: 'exporter' has no function 'pull'" in err
    assert not marker.exists(), "validating a source runs none of its code"


def test_a_broken_nli_model_folder_is_reported_and_the_others_still_checked(
    tmp_path: Path,
) -> None:
    make_project(tmp_path)
    data = contract(agent="nli-agent")
    data["evals"]["grounding"] = {"judge": "nli", "model": "models/nli"}
    path = add_contract(tmp_path, data)
    (tmp_path / "models" / "nli").mkdir(parents=True)
    (tmp_path / "models" / "nli" / "config.json").write_text('{"id2label": ')
    code, out, err = validate(tmp_path)
    assert code == 2
    assert "tiny-agent.yaml: 8 cases" in out
    line = line_of(path, "grounding") + 2
    assert f"nli-agent.yaml:{line}: evals.grounding.model: " in err
    assert "config.json cannot be read as JSON" in err
    assert err.count("evals.grounding.model") == 1

    (tmp_path / "models" / "nli" / "config.json").write_text(
        json.dumps({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}})
    )
    code, _, err = validate(tmp_path)
    assert "is not an NLI model: its labels are ['label_0', 'label_1']" in err

    (tmp_path / "models" / "nli" / "config.json").write_text(
        json.dumps({"id2label": {"0": "contradiction", "1": "entailment", "2": "neutral"}})
    )
    code, _, err = validate(tmp_path)
    assert "has no weights" in err
    assert "Traceback" not in err


def test_a_nightly_schedule_that_disagrees_with_the_contract_is_reported(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "prefect.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "p",
                "deployments": [
                    {
                        "name": "nightly",
                        "entrypoint": "flows/nightly_suite.py:nightly",
                        "schedules": [{"cron": "30 3 * * *", "timezone": "UTC"}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    code, _, err = validate(tmp_path)
    assert code == 2
    assert "prefect.yaml:" in err
    assert "30 3 * * *" in err
    assert "tiny-agent" in err
