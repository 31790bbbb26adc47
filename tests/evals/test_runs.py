"""evaluate(): a contract end to end in the engine, without Prefect or storage."""

from __future__ import annotations

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
