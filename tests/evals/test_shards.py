"""The engine's shard function: the session's scores for any batch, scorers built once."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from evals.contract import load_contract
from evals.runs import loaded_scorer_sets, prepare, score, score_shard
from tests.helpers import CONTRACT, make_project


def _project(tmp_path: Path) -> Path:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    return make_project(tmp_path, data)


def test_shards_in_any_order_give_the_whole_run_scores(tmp_path: Path) -> None:
    path = _project(tmp_path)
    plan = prepare(load_contract(path))
    cases = list(plan.dataset.cases)
    outputs = plan.target.generate(cases, None, None)
    whole = score(plan.scorers, cases, outputs)
    before = loaded_scorer_sets()
    # Shards travel to other processes: every argument and result pickles.
    late = pickle.loads(pickle.dumps(score_shard(str(path), cases[4:], outputs[4:])))
    early = score_shard(str(path), cases[:4], outputs[:4])
    assert loaded_scorer_sets() == before + 1, "built once for both shards"
    assert set(early) == set(late) == set(whole)
    assert len(whole) >= 3, "policy, cost and latency each score"
    for name, values in whole.items():
        assert early[name] + late[name] == values, name


def test_a_changed_rule_pack_builds_new_scorers(tmp_path: Path) -> None:
    path = _project(tmp_path)
    plan = prepare(load_contract(path))
    cases = list(plan.dataset.cases)[:2]
    outputs = plan.target.generate(cases, None, None)
    score_shard(str(path), cases, outputs)
    before = loaded_scorer_sets()
    pack = tmp_path / "policies" / "rules" / "default.yaml"
    pack.write_text(pack.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    score_shard(str(path), cases, outputs)
    assert loaded_scorer_sets() == before + 1


def test_a_shard_needs_one_output_per_case(tmp_path: Path) -> None:
    path = _project(tmp_path)
    plan = prepare(load_contract(path))
    cases = list(plan.dataset.cases)
    outputs = plan.target.generate(cases, None, None)
    with pytest.raises(ValueError, match="one output per case: 8 != 7"):
        score_shard(str(path), cases, outputs[:7])


@pytest.mark.model
def test_a_shard_given_the_calibrated_threshold_scores_like_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """returns-concierge fits its grounding judge's threshold on the owner's 60 labels."""
    from evals.runs import RunSession

    # A process that ran another test on this contract may hold its scorers already.
    monkeypatch.setattr("evals.runs._shards._SCORERS", {})

    path = Path(__file__).resolve().parents[2] / "policies" / "returns-concierge.yaml"
    with RunSession.open(path, None, sync_ledger=False, journal=False) as session:
        threshold = session.support_threshold
        assert threshold is not None, "the contract calibrates its judge on labels"
        assert session.shardable, "a calibrated golden run shards too"
        cases = session.cases[:6]
        outputs = session.plan.target.generate(cases, None, None)
        expected = session.score(cases, outputs)
    before = loaded_scorer_sets()
    scored = score_shard(str(path), cases, outputs, support_threshold=threshold)
    assert scored == expected
    assert "faithfulness" in scored, "the grounding judge scored"
    # Without the threshold a shard would judge at the file's setting: other scorers.
    score_shard(str(path), cases[:1], outputs[:1])
    assert loaded_scorer_sets() == before + 2
