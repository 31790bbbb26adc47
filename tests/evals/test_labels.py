"""The labelling loop without a model: label files, the labels table, judge checks and gates."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evals.contract import GroundingConfig, Threshold
from evals.errors import UserError
from evals.gates import GateResult, Verdict
from evals.judges import Claim, GroundingVerdict
from evals.labelling import (
    answer_id,
    check_drift,
    check_judge,
    import_labels,
    read_label_file,
    stratified,
    validate_rows,
    write_label_file,
)
from evals.metrics import MetricValue
from evals.runs._run import checked_judge_gates, unchecked_judge_gates
from evals.store import (
    LabelRecord,
    MetricRecord,
    ResultsStore,
    RunRecord,
    labels_hash,
    ledger_for,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _row(case: str, answer: str, label: Any, agent: str = "tiny-agent") -> dict[str, Any]:
    return {
        "id": answer_id("grounding", case, answer),
        "agent": agent,
        "kind": "grounding",
        "run_id": "r1",
        "case_id": case,
        "version": "v1",
        "question": "q?",
        "contexts": ["The sky is blue.", "Grass is green."],
        "answer": answer,
        "judge": "offline",
        "judge_score": 0.8,
        "judge_flag": 0,
        "claims": [],
        "findings": [],
        "label": label,
        "note": "",
    }


def _record(case: str, answer: str, label: int, score: float, at: datetime = NOW) -> LabelRecord:
    return LabelRecord(
        item_id=answer_id("grounding", case, answer),
        agent="tiny-agent",
        kind="grounding",
        run_id="r1",
        case_id=case,
        version="v1",
        question="q?",
        contexts=("ctx",),
        answer=answer,
        judge="offline",
        judge_score=score,
        judge_flag=score < 0.5,
        label=label,
        note="",
        labelled_by="ana",
        labelled_at=at,
        batch_id=f"b-{at.isoformat()}",
        source="labels.csv",
    )


def test_stratified_covers_both_sides_of_the_threshold_and_the_score_range() -> None:
    scores = [i / 100 for i in range(100)]
    flags = [s < 0.2 for s in scores]  # few flagged: they all make it in, the rest fill up
    chosen = stratified(scores, flags, 30)
    assert len(chosen) == 30
    assert sum(flags[i] for i in chosen) == 15
    picked = [scores[i] for i in chosen]
    assert (min(picked), max(picked)) == (0.0, 0.99), "both ends of the range are covered"
    assert stratified([0.1, 0.9], [True, False], 10) == [0, 1], "never more than there are"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_label_files_round_trip_in_csv_and_jsonl(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"labels{suffix}"
    rows = [_row("c1", "The sky is blue.", None), _row("c2", "Grass is red.", None)]
    write_label_file(rows, path)
    back = read_label_file(path)
    assert [r["contexts"] for _, r in back] == [rows[0]["contexts"], rows[1]["contexts"]]
    assert all(r["label"] in ("", None) for _, r in back), "the label column starts empty"


def test_every_bad_row_is_named_with_its_line_and_nothing_is_returned(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    good = _row("c1", "The sky is blue.", 0)
    edited = _row("c2", "Grass is green.", 1)
    edited["answer"] = "Grass is purple."
    rows = [
        good,
        _row("c3", "Snow is white.", ""),
        _row("c4", "Snow is cold.", "maybe"),
        edited,
        {**_row("c5", "Ice melts.", 1), "id": "nonsense"},
        {**good, "label": 1},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(UserError) as caught:
        validate_rows(read_label_file(path), path, by="ana", known=None)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "labels.jsonl:2: label: is empty" in text
    assert "labels.jsonl:3: label: must be 1" in text
    assert "labels.jsonl:4: answer: does not match id" in text
    assert "labels.jsonl:5: id: 'nonsense' is not an exported item" in text
    assert "labels.jsonl:6: label: says 1 but line 1 labels the same item 0" in text


def test_unknown_ids_are_refused_against_the_store(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(_row("c1", "The sky is blue.", 1)) + "\n")
    with pytest.raises(UserError, match="unknown id 'grounding:c1:"):
        validate_rows(read_label_file(path), path, by="ana", known={"tiny-agent": set()})


def test_importing_twice_changes_nothing_and_a_relabel_supersedes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [_row("c1", "The sky is blue.", 0), _row("c2", "Grass is red.", 1)]
    path = tmp_path / "labels.csv"
    write_label_file(rows, path)
    store = ResultsStore(tmp_path / "results")
    monkeypatch.setattr(
        "evals.labelling._files.known_items",
        lambda store, agents, policies: {"tiny-agent": {r["id"] for r in rows}},
    )
    first = import_labels(path, "ana", store)
    assert (first.new, first.changed, first.unchanged) == (2, 0, 0)
    files = store.files("labels")
    again = import_labels(path, "ana", store)
    assert (again.new, again.changed, again.unchanged, again.stored) == (0, 0, 2, [])
    assert store.files("labels") == files, "the same file twice writes nothing"
    rows[1]["label"] = 0
    write_label_file(rows, path)
    relabel = import_labels(path, "ben", store)
    assert (relabel.new, relabel.changed) == (0, 1)
    current = {r.case_id: (r.label, r.labelled_by) for r in store.labels("tiny-agent")}
    assert current == {"c1": (0, "ana"), "c2": (0, "ben")}
    assert len(store.table("labels", "tiny-agent")) == 3, "history is kept, the newest wins"


def test_a_bad_file_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    write_label_file([_row("c1", "The sky is blue.", 0), _row("c2", "x y z", "")], path)
    store = ResultsStore(tmp_path / "results")
    with pytest.raises(UserError, match="label: is empty"):
        import_labels(path, "ana", store)
    assert store.labels("tiny-agent") == []


def test_labels_hash_ignores_order_and_sees_a_changed_label() -> None:
    a, b = _record("c1", "x", 0, 0.9), _record("c2", "y", 1, 0.1)
    assert labels_hash([a, b]) == labels_hash([b, a])
    assert labels_hash([a, b]) != labels_hash([a, _record("c2", "y", 0, 0.1)])


class _Judge:
    """A judge whose support for an answer is the number the answer ends with."""

    name = "stub"
    support_threshold = 0.5

    def judge(self, items: Any) -> list[GroundingVerdict]:
        out = []
        for answer, _ in items:
            p = float(answer.rsplit(" ", 1)[-1])
            claim = Claim(answer, p >= 0.5, p, "", "supported" if p >= 0.5 else "unsupported")
            out.append(GroundingVerdict([claim], [], judge="stub"))
        return out


@pytest.fixture
def stub_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evals.labelling._check.build_judge", lambda config: _Judge())
    monkeypatch.setattr("evals.labelling._check.judge_fingerprint", lambda config: "stub:1")
    monkeypatch.setattr("evals.labelling._check._VERDICTS", OrderedDict())


def _labels(pairs: list[tuple[float, int]]) -> list[LabelRecord]:
    return [_record(f"c{i}", f"answer {p}", y, p) for i, (p, y) in enumerate(pairs)]


@pytest.mark.usefixtures("stub_judge")
def test_a_process_judges_the_same_labels_once_with_a_deterministic_judge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []

    class Counting(_Judge):
        def judge(self, items: Any) -> list[GroundingVerdict]:
            asked.append(len(items))
            return super().judge(items)

    monkeypatch.setattr("evals.labelling._check.build_judge", lambda config: Counting())
    pairs = [(0.1, 1), (0.2, 1), (0.4, 0), (0.45, 0), (0.7, 0), (0.9, 0)]
    first = check_judge(GroundingConfig(), _labels(pairs), confidence=0.95)
    again = check_judge(GroundingConfig(), _labels(pairs), confidence=0.95)
    assert asked == [6], "the same judge on the same labels is not asked twice"
    assert again.agreement == first.agreement
    assert again.provenance == first.provenance

    check_judge(GroundingConfig(), _labels([*pairs[:-1], (0.95, 0)]), confidence=0.95)
    check_judge(GroundingConfig(support_threshold=0.4), _labels(pairs), confidence=0.95)
    assert asked == [6, 6, 6], "a changed answer or judge setting is judged again"

    llm = GroundingConfig(judge="llm", model="openai/judge")
    check_judge(llm, _labels(pairs), confidence=0.95)
    check_judge(llm, _labels(pairs), confidence=0.95)
    assert asked == [6, 6, 6, 6, 6], "an LLM judge is asked again (its calls have a cache)"


@pytest.mark.usefixtures("stub_judge")
def test_uncalibrated_agreement_is_measured_at_the_judge_threshold() -> None:
    # The judge flags below 0.5; the owner calls unsupported everything below 0.3.
    labels = _labels([(0.1, 1), (0.2, 1), (0.4, 0), (0.45, 0), (0.7, 0), (0.9, 0)])
    check = check_judge(GroundingConfig(), labels, confidence=0.95)
    assert check.calibration is None
    assert check.threshold == 0.5
    assert check.agreement.balanced_accuracy is not None
    assert check.agreement.balanced_accuracy.value == pytest.approx((1.0 + 0.5) / 2)
    metric = check.metric()
    assert (metric.name, metric.n) == ("judge_agreement", 6)
    assert "at the judge's own threshold" in metric.note
    assert check.provenance["calibrated"] is False
    assert check.provenance["judge_fingerprint"] == "stub:1"


@pytest.mark.usefixtures("stub_judge")
def test_a_calibration_moves_the_threshold_and_reports_cross_validated_agreement() -> None:
    pairs = [(0.05 * i, int(0.05 * i < 0.3)) for i in range(1, 20)]
    config = GroundingConfig.model_validate({"calibration": {"objective": "balanced"}})
    check = check_judge(config, _labels(pairs), confidence=0.95)
    assert check.calibration is not None
    assert check.threshold is not None
    assert 0.25 < check.threshold <= 0.35
    assert check.agreement == check.calibration.cross_validated
    assert check.provenance["n"] == 19
    assert check.provenance["calibrated"] is True
    assert check.provenance["fit"]["threshold"] == check.threshold

    # The same labels under another judge: the run says the old calibration no longer applies.
    again = check_judge(
        config,
        _labels(pairs),
        confidence=0.95,
        previous={**check.provenance, "judge_fingerprint": "stub:0"},
    )
    assert any(
        "judge changed since its last calibration (stub:0 → stub:1)" in n for n in again.notes
    )


@pytest.mark.usefixtures("stub_judge")
def test_labels_of_one_kind_cannot_calibrate() -> None:
    config = GroundingConfig.model_validate({"calibration": {}})
    with pytest.raises(UserError, match="label more answers the owner judges unsupported"):
        check_judge(config, _labels([(0.1, 0), (0.9, 0), (0.5, 0)]), confidence=0.95)


def test_the_contract_refuses_a_budget_without_its_objective_and_a_threshold_beside_it() -> None:
    with pytest.raises(ValueError, match="needs 'budget'"):
        GroundingConfig.model_validate({"calibration": {"objective": "false_alarm_budget"}})
    with pytest.raises(ValueError, match="not both"):
        GroundingConfig.model_validate({"support_threshold": 0.4, "calibration": {}})


def _value(metric: str) -> MetricValue:
    return MetricValue(metric, 0.9, 0.85, 0.95, 50, 0, "bootstrap", 0.95)


def _gate(metric: str, verdict: Verdict) -> GateResult:
    observed = _value(metric)
    return GateResult(metric, Threshold(min=0.7), observed, verdict, "0.90 clears ≥ 0.70")


def test_an_unlabelled_judge_decides_nothing_at_a_level_that_needs_agreement() -> None:
    gates = [
        _gate("faithfulness", Verdict.PASS),
        _gate("hallucination_rate", Verdict.FAIL),
        _gate("policy_violation_rate", Verdict.PASS),
        GateResult("judge_agreement", Threshold(min=0.7), None, Verdict.FAIL, "no data"),
    ]
    out = {g.metric: g for g in unchecked_judge_gates(gates)}
    assert out["judge_agreement"].verdict == Verdict.INCONCLUSIVE
    assert "impactgate labels export" in out["judge_agreement"].reason
    assert out["faithfulness"].verdict == Verdict.INCONCLUSIVE, "never a pass"
    assert "nobody has checked" in out["faithfulness"].reason
    assert out["hallucination_rate"].verdict == Verdict.FAIL, "a failure stands"
    assert out["policy_violation_rate"].verdict == Verdict.PASS, "not the judge's metric"
    # A level that does not ask for agreement is left as it was.
    assert unchecked_judge_gates(gates[:3]) == gates[:3]


@pytest.mark.usefixtures("stub_judge")
def test_a_judge_that_disagrees_with_its_labels_is_refused_in_words_and_passes_nothing() -> None:
    # Answers the owner calls unsupported score as high as the fine ones (a swapped setting in
    # the passages' own words): the judge misses them, and no threshold tells them apart.
    pairs = [(0.55 + 0.02 * i, 1) for i in range(18)] + [(0.1, 1), (0.2, 1)]
    pairs += [(0.56 + 0.02 * i, 0) for i in range(17)] + [(0.3, 0), (0.4, 0), (0.45, 0)]
    check = check_judge(GroundingConfig(), _labels(pairs), confidence=0.95)
    measured = check.metric()
    assert measured.value is not None
    assert measured.value < 0.6
    assert "of the 20 answers you labelled unsupported it catches 2" in measured.note
    gates = [
        _gate("faithfulness", Verdict.PASS),
        _gate("hallucination_rate", Verdict.FAIL),
        _gate("policy_violation_rate", Verdict.PASS),
        GateResult("judge_agreement", Threshold(min=0.75), measured, Verdict.FAIL, "0.5 < 0.75"),
    ]
    out = {g.metric: g for g in checked_judge_gates(gates, check, "expanded")}
    reason = out["judge_agreement"].reason
    assert out["judge_agreement"].verdict == Verdict.FAIL
    assert reason.startswith(
        "the grounding judge disagrees with your labels: of the 20 answers you labelled "
        "unsupported it catches 2, and of the 20 you labelled fine it flags 3. It agrees with you "
    )
    assert "'expanded' needs 75%, so its verdicts cannot decide this level" in reason
    assert "Fitting its threshold on your labels does not fix it" in reason
    assert "evals.grounding.judge: llm" in reason
    assert out["faithfulness"].verdict == Verdict.INCONCLUSIVE, "never a pass"
    assert "a grounding judge disagrees with your labels" in out["faithfulness"].reason
    assert out["hallucination_rate"].verdict == Verdict.FAIL, "a failure stands"
    assert out["policy_violation_rate"].verdict == Verdict.PASS, "not the judge's metric"
    assert checked_judge_gates(gates[:3], check, "expanded") == gates[:3]


@pytest.mark.usefixtures("stub_judge")
def test_a_judge_whose_threshold_is_what_is_wrong_is_told_to_fit_it() -> None:
    # The owner calls unsupported everything below 0.7; the judge flags below 0.5.
    pairs = [(0.45 + 0.012 * i, 1) for i in range(20)] + [(0.75 + 0.01 * i, 0) for i in range(20)]
    check = check_judge(GroundingConfig(), _labels(pairs), confidence=0.95)
    assert check.agreement.balanced_accuracy is not None
    assert check.agreement.balanced_accuracy.value < 0.75
    assert check.refit is not None
    reason = check.explain(0.75, "expanded", "fail")
    assert "Fitting its threshold on your labels reaches" in reason
    assert "set evals.grounding.calibration" in reason
    agreeing = check.explain(0.5, "constrained", "pass")
    assert agreeing.startswith("the grounding judge agrees with your labels: ")
    assert agreeing.endswith("its verdicts can be trusted at this level")


@pytest.mark.usefixtures("stub_judge")
def test_fresh_labels_that_disagree_open_one_medium_incident(tmp_path: Path) -> None:

    results = str(tmp_path / "results")
    store = ResultsStore(results)
    ledger = ledger_for(results)
    ledger.sync("tiny-agent", "v1", "constrained", None, "policies/tiny-agent.yaml")
    pairs = [(0.02 * i, int(0.02 * i < 0.3)) for i in range(1, 41)]
    config = GroundingConfig.model_validate({"calibration": {}})
    check = check_judge(config, _labels(pairs), confidence=0.95)
    run = RunRecord(
        run_id="r1", agent="tiny-agent", version="v1", version_hash="h", dataset="d",
        dataset_hash="d", trigger="nightly", level="constrained", started_at=NOW,
        contract="c", finished_at=NOW, code_version=None, n_cases=1,
        metrics={"error_rate": MetricRecord.of("error_rate", _value("error_rate"), None)},
        calibration=check.provenance,
    )  # fmt: skip
    store.write_run(run, [])
    assert store.runs("tiny-agent")[0].calibration == check.provenance, "stored with the run"

    # A fresh round where the owner now calls unsupported what the judge finds well supported.
    later = NOW + timedelta(days=7)
    fresh = [
        _record(f"f{i}", f"a {i}", int(i % 2 == 0), 0.9 if i % 2 == 0 else 0.1, later)
        for i in range(30)
    ]
    [finding] = check_drift(store, ledger, fresh)
    assert finding.drift.drifted
    assert "no longer agrees with you" in finding.drift.reason
    assert finding.incident is not None
    assert finding.incident.severity == "medium"
    [again] = check_drift(store, ledger, fresh)
    assert again.incident is not None
    assert again.incident.id == finding.incident.id, "deduplicated"
    assert len(ledger.incidents("tiny-agent", open_only=True)) == 1

    agreeing = [
        _record(f"g{i}", f"b {i}", int(i % 2 == 0), 0.1 if i % 2 == 0 else 0.9, later)
        for i in range(30)
    ]
    [fine] = check_drift(store, ledger, agreeing)
    assert fine.drift.status == "holds"
    assert fine.incident is None


@pytest.mark.model
def test_the_example_calibrates_on_its_owner_labels_and_gates_expanded_on_agreement() -> None:
    from evals.contract import load_contract
    from evals.runs import evaluate

    root = Path(__file__).resolve().parents[2]
    contract = load_contract(root / "policies" / "returns-concierge.yaml")
    result = evaluate(contract, level="expanded")
    provenance = result.record.calibration
    assert provenance is not None
    assert provenance["calibrated"] is True
    assert provenance["n"] == 60
    assert provenance["judge_fingerprint"].startswith("offline:")
    agreement = result.metrics["judge_agreement"]
    assert agreement.value is not None
    assert agreement.value > 0.9, "the judge agrees with the card's ground truth"
    gates = {g.metric: g for g in result.gates}
    assert gates["judge_agreement"].verdict == Verdict.PASS
    # The 20 invented claims are what the calibrated judge flags, give or take one.
    assert 19 <= round(result.metrics["hallucination_rate"].value * 50) <= 22  # type: ignore[operator]


def test_an_agreement_near_the_bar_asks_for_more_labels_and_says_how_many() -> None:
    from evals.labelling import JudgeCheck
    from evals.metrics import judge_agreement, labels_needed

    labels = [1] * 10 + [0] * 10
    flags = [1] * 8 + [0] * 2 + [0] * 8 + [1] * 2
    check = JudgeCheck(judge_agreement(labels, flags), None, 0.5, {"labels_hash": "h"})
    reason = check.explain(0.75, "expanded", "inconclusive")
    assert reason.startswith("it is not yet clear that the grounding judge agrees with your labels")
    assert "It agrees with you 80% [" in reason
    assert f"about {labels_needed(0.75, 0.8)} labels in all would decide it" in reason
    assert reason.endswith("label more answers (impactgate labels export)")


def test_a_disagreeing_llm_judge_is_not_told_to_switch_to_itself() -> None:
    from evals.labelling import JudgeCheck
    from evals.metrics import judge_agreement

    labels = [1] * 20 + [0] * 20
    flags = [1] * 6 + [0] * 14 + [0] * 16 + [1] * 4
    provenance = {"labels_hash": "h", "judge_fingerprint": "llm:gpt-4o-mini:abc:x1"}
    check = JudgeCheck(judge_agreement(labels, flags), None, 0.5, provenance)
    reason = check.explain(0.75, "expanded", "fail")
    assert "evals.grounding.judge: llm" not in reason
    assert reason.endswith(
        "Look at the answers it gets wrong, then change the judge's model or prompt (or a label "
        "that was wrong) and check it again on the same labels."
    )
