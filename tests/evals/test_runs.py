"""evaluate(): a contract end to end in the engine, without Prefect or storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.contract import load_contract
from evals.gates import Verdict
from evals.runs import evaluate
from tests.helpers import make_project

pytestmark = pytest.mark.model


def test_leaking_version_fails_its_rollback_gate_and_explains_each_case(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path, leak_every=2))
    result = evaluate(contract)
    assert result.record.version == "v2"
    gates = {g.metric: g for g in result.gates}
    assert gates["policy_violation_rate"].verdict == Verdict.FAIL
    assert gates["policy_violation_rate"].rollback
    assert result.metrics["policy_violation_rate"].value == 0.5
    leaked = result.cases[1].scores["policy_violation"]
    assert leaked.passed is False
    assert "pii.email" in leaked.explanation
    assert "jane.roe@mail.example" not in leaked.explanation, "the span is masked"
    assert result.verdict == Verdict.FAIL


def test_clean_version_passes_with_intervals(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path))
    result = evaluate(contract, version="v1")
    assert result.verdict == Verdict.PASS, [g.reason for g in result.gates]
    faithfulness = result.metrics["faithfulness"]
    assert faithfulness.value == 1.0
    assert faithfulness.n == 8
    assert result.metrics["latency_p50_s"].low is not None


@pytest.mark.parametrize("mode", ["masked", "raw", "none"])
def test_what_a_run_stores_of_its_outputs_is_the_contracts_choice(
    tmp_path: Path, mode: str
) -> None:
    import copy

    from tests.helpers import CONTRACT

    data = copy.deepcopy(CONTRACT)
    data["evals"]["store_outputs"] = mode
    result = evaluate(load_contract(make_project(tmp_path, data, leak_every=2)))
    leaked = result.cases[1]
    raw = "jane.roe@mail.example"
    stored = json.dumps([s.to_row() for s in leaked.samples("r", "v2")])
    violation = leaked.scores["policy_violation"].metadata["violations"][0]
    if mode == "raw":
        assert raw in (leaked.output.text or "")
        return
    assert raw not in stored, "no stored field keeps the email: output, evidence, explanation"
    assert leaked.scores["policy_violation"].passed is False, "the finding is kept"
    if mode == "none":
        assert leaked.output.text is None
    else:
        text = leaked.output.text or ""
        assert text[violation["start"] : violation["end"]] == violation["masked"], (
            "the finding points at its masked span in the stored output"
        )
