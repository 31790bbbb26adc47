"""Replay and Python targets: versions, timing, and failures recorded, never raised."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.contract import load_contract
from evals.dataset import load_dataset
from evals.errors import UserError
from evals.targets import PythonTarget, ReplayTarget, build_target
from tests.helpers import CONTRACT, make_project


def test_replay_serves_each_recorded_version(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path))
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    target = build_target(contract, dataset)
    assert isinstance(target, ReplayTarget)
    assert target.available_versions() == ["v1", "v2"]
    v2, v1 = target.generate(dataset.cases), target.at_version("v1").generate(dataset.cases)
    assert "jane.roe@mail.example" in (v2[1].text or "")
    assert all("@" not in (o.text or "") for o in v1)
    assert v2[0].latency_s == pytest.approx(0.6)
    assert target.version().hash != target.at_version("v1").version().hash


def test_replay_unknown_version_suggests(tmp_path: Path) -> None:
    data = {
        **CONTRACT,
        "evals": {**CONTRACT["evals"], "target": {**CONTRACT["evals"]["target"], "version": "v3"}},
    }
    contract = load_contract(make_project(tmp_path, data))
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    with pytest.raises(
        UserError, match=r"evals\.target\.version: no outputs recorded for version 'v3'"
    ):
        build_target(contract, dataset)


@pytest.fixture
def agent_module(tmp_path: Path) -> Iterator[Path]:
    package = tmp_path / "fake_agents"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agent.py").write_text(
        textwrap.dedent(
            """
            import asyncio

            def answer(case, suffix=""):
                if case.id == "c2":
                    raise RuntimeError("upstream 503")
                if case.id == "c3":
                    return 42
                return {"output": case.input + suffix, "usage": {"prompt_tokens": 3, "completion_tokens": 4}}

            async def answer_async(case):
                await asyncio.sleep(0.01)
                return "async " + case.id
            """
        )
    )
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fake_agents")]:
        del sys.modules[name]


def python_contract(project: Path, function: str) -> Path:
    data = {
        **CONTRACT,
        "evals": {
            **CONTRACT["evals"],
            "target": {"kind": "python", "function": function, "params": {}},
        },
    }
    return make_project(project, data)


def test_python_target_times_calls_and_records_failures(agent_module: Path) -> None:
    contract = load_contract(python_contract(agent_module, "fake_agents.agent:answer"))
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    target = build_target(contract, dataset)
    assert isinstance(target, PythonTarget)
    outputs = target.generate(dataset.cases[:3])
    assert outputs[0].text == dataset.cases[0].input
    assert outputs[0].usage is not None
    assert outputs[0].usage.completion_tokens == 4
    assert outputs[0].latency_s is not None
    assert outputs[0].latency_s >= 0
    assert outputs[1].error == "RuntimeError: upstream 503"
    assert outputs[2].error is not None
    assert "returned int" in outputs[2].error


def test_python_target_runs_async_functions(agent_module: Path) -> None:
    contract = load_contract(python_contract(agent_module, "fake_agents.agent:answer_async"))
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    outputs = build_target(contract, dataset).generate(dataset.cases)
    assert [o.text for o in outputs] == [f"async {c.id}" for c in dataset.cases]


def test_python_target_import_errors_are_user_errors(agent_module: Path) -> None:
    contract = load_contract(python_contract(agent_module, "fake_agents.missing:answer"))
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    with pytest.raises(
        UserError, match=r"evals\.target\.function: cannot import 'fake_agents\.missing'"
    ):
        build_target(contract, dataset)
