"""Scorers explain themselves; unknown cost is an error, and a crash is contained."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from evals.contract import Price
from evals.dataset import Case, Usage
from evals.scorers import Score, cost, latency, litellm_price_table, run_scorer
from evals.targets import Output

pytestmark = pytest.mark.model

CASE = Case(id="c1", input="q", contexts=["x"])


def out(**kwargs: object) -> Output:
    return Output("c1", "an answer", **kwargs)  # type: ignore[arg-type]


def test_cost_prices_tokens_with_litellms_table() -> None:
    entry = litellm_price_table()["gpt-4o-mini"]
    [score] = cost(model="gpt-4o-mini")(
        [CASE], [out(usage=Usage(prompt_tokens=1000, completion_tokens=100))]
    )
    expected = 1000 * entry["input_cost_per_token"] + 100 * entry["output_cost_per_token"]
    assert score.value == pytest.approx(expected)
    assert "litellm price table" in score.explanation


def test_cost_prefers_recorded_cost_and_contract_prices() -> None:
    [recorded] = cost()([CASE], [out(cost_usd=0.01)])
    assert recorded.value == 0.01
    assert recorded.metadata == {"source": "recorded"}
    prices = {"house-model": Price(input_per_mtok=1.0, output_per_mtok=2.0)}
    [priced] = cost(prices=prices)(
        [CASE],
        [out(model="house-model", usage=Usage(prompt_tokens=10**6, completion_tokens=10**6))],
    )
    assert priced.value == pytest.approx(3.0)


def test_unknown_cost_is_an_error_never_zero() -> None:
    [no_usage] = cost(model="gpt-4o-mini")([CASE], [out()])
    assert no_usage.value is None
    assert "neither a cost nor token usage" in (no_usage.error or "")
    [unknown] = cost()(
        [CASE], [out(model="made-up-model", usage=Usage(prompt_tokens=1, completion_tokens=1))]
    )
    assert "add evals.cost.prices.made-up-model" in (unknown.error or "")


def test_a_missing_latency_is_not_measured_and_not_an_error() -> None:
    from evals.metrics import METRICS, aggregate

    scores = latency()([CASE, CASE], [out(latency_s=1.5), out()])
    assert scores[0].value == 1.5
    assert (scores[1].value, scores[1].error) == (None, None), "the output exists: no error"
    assert "not measured" in scores[1].explanation
    p50 = aggregate(METRICS["latency_p50_s"], [None, None], 0.95)
    assert p50.value is None, "a gate on it cannot pass"
    assert "not measured" in p50.note


def test_a_crashing_scorer_becomes_recorded_errors_for_its_cases_only() -> None:
    cases = [Case(id=f"c{i}", input="q") for i in range(3)]
    outputs = [
        Output("c0", "fine"),
        Output("c1", "boom"),
        Output("c2", None, error="timeout after 3 retries"),
    ]

    def fragile(batch: Sequence[Case], outs: Sequence[Output]) -> list[Score]:
        if any(o.text == "boom" for o in outs):
            raise ZeroDivisionError("division by zero")
        return [Score(1.0, True, "ok") for _ in outs]

    scores = run_scorer("fragile", fragile, cases, outputs)
    assert scores[0].value == 1.0
    assert scores[1].error == "scorer 'fragile' crashed: ZeroDivisionError: division by zero"
    assert scores[2].error == "no output: timeout after 3 retries"


def test_rag_scorers_on_plain_cases() -> None:
    from evals.scorers import (
        answer_correctness,
        answer_relevance,
        context_precision,
        context_recall,
    )

    case = Case(
        id="r1",
        input="How long do refunds take?",
        contexts=[
            "Our office dog is called Biscuit.",
            "Refunds are issued within 5 business days.",
        ],
        reference="Refunds are issued within 5 business days.",
    )
    good = Output("r1", "Refunds are issued within 5 business days.")
    wrong = Output("r1", "Our office dog is called Biscuit.")
    [precision] = context_precision()([case], [good])
    assert precision.value == pytest.approx(0.5), "the useful context is ranked second"
    assert "ranks [2]" in precision.explanation
    [recall] = context_recall()([case], [good])
    assert recall.value == 1.0
    right, off = answer_correctness()([case, case], [good, wrong])
    assert right.value is not None
    assert off.value is not None
    assert right.value > 0.9 > off.value
    relevant, irrelevant = answer_relevance()([case, case], [good, wrong])
    assert relevant.value is not None
    assert irrelevant.value is not None
    assert relevant.value > irrelevant.value
    [missing] = context_recall()([Case(id="x", input="q", contexts=["c"])], [good])
    assert missing.error == "needs a reference answer on the case"


def test_every_metric_that_aggregates_a_scorer_has_one_registered() -> None:
    from evals.metrics import METRICS
    from evals.scorers import registered_scorers

    registered = registered_scorers()
    for spec in METRICS.values():
        if spec.scorer is not None:
            assert spec.scorer in registered, spec.name
            assert registered[spec.scorer].suite == spec.suite
            assert spec.name in registered[spec.scorer].metrics


def test_a_scorer_no_metric_aggregates_cannot_be_registered() -> None:
    import pytest

    from evals.scorers import scorer

    with pytest.raises(ValueError, match="exactly one suite's metrics must name it"):
        scorer(name="tone")


def test_building_a_contracts_scorers_reads_the_registry(tmp_path: Path) -> None:
    from evals.contract import load_contract
    from evals.scorers import build_scorers
    from tests.helpers import make_project

    contract = load_contract(make_project(tmp_path))
    assert list(build_scorers(contract)) == [
        "faithfulness", "hallucination", "policy_violation", "cost", "latency",
    ]  # fmt: skip


def test_a_local_nli_model_is_found_from_the_project_root_wherever_impactgate_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    from evals.contract import load_contract
    from evals.scorers import grounding_options
    from tests.helpers import CONTRACT, make_project

    data = copy.deepcopy(CONTRACT)
    data["evals"]["grounding"] = {"judge": "nli", "model": "models/nli"}
    contract = load_contract(make_project(tmp_path / "p", data))
    (tmp_path / "p" / "models" / "nli").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # not the project root
    config = grounding_options(contract)["config"]
    assert config.model == str((tmp_path / "p" / "models" / "nli").resolve())
